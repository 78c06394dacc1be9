"""The membership test and search over a built dataset (recipe.md §5)."""
