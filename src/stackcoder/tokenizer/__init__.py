"""The StarCoder2 tokenizer: byte-level BPE with the recipe's 38 special tokens (recipe.md §2).

``special_tokens`` names the tokens (no heavy imports, so the model, trainer and server can use it);
``train_bpe`` trains, saves and loads a ``tokenizers.Tokenizer``; ``corpus`` streams training text out
of a dataset built by ``stackcoder build``.
"""
