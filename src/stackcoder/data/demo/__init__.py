"""The demo corpus: real packages by others, pinned in ``manifest.toml`` (docs/demo-corpus.md)."""
