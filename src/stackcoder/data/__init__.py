"""The Stack v2 dataset pipeline (recipe.md §1): datatrove steps and the recipe that chains them."""
