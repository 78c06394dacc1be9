"""stackcoder: The Stack v2 pipeline and StarCoder2 model, end to end (see README.md)."""

__version__ = "0.1.0"
