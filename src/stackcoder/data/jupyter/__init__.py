"""Jupyter notebooks as StarCoder2's two notebook sources (recipe.md §6): scripts and structured."""
