"""The StarCoder2 tokenizer: byte-level BPE with the recipe's 38 special tokens (recipe.md §2).

``special_tokens`` names the tokens (no heavy imports, so the model, trainer and server can use it);
``files`` loads, checks and saves a ``tokenizers.Tokenizer`` and is the one place that encodes and
decodes; ``train_bpe`` trains one; ``prompts`` builds the FIM and repository-level prompts.
"""
