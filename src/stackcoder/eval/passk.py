"""pass@k with the unbiased estimator of Chen et al. (2021): for a problem with n samples of which c
pass, pass@k = 1 − C(n−c, k) / C(n, k) (recipe.md §4), computed as a product so large n stays exact."""

from __future__ import annotations

import math
from collections.abc import Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"need 0 <= c <= n and k >= 1, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def mean_pass_at_k(results: Sequence[tuple[int, int]], k: int) -> float | None:
    """Mean pass@k over problems, from (n, c) per problem; None when a problem has fewer than k samples."""
    if not results or any(n < k for n, _ in results):
        return None
    return sum(pass_at_k(n, c, k) for n, c in results) / len(results)
