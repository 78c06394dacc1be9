"""Evaluation: sandboxed pass@k, repository-level FIM, perplexity."""
