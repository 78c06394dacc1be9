"""Per-repository sampling of pull requests (recipe.md §6): a repository with ``n`` kept PRs keeps
each with probability ``0.8007 - 0.0007 n`` for ``n <= 1000``, ``100 / n`` above, so that a few
very active repositories do not dominate (about 100 PRs at most from the largest).

``n`` counts the PRs of the repository that passed the filters before this step (BigCode counted
after its filters too). All of a repository's PRs are in one task (``partition.bucket_of``), so
the step holds the task's PR threads until it has counted them. The draw is seeded by the recipe's
seed and the PR's repository and number, so the same input keeps the same PRs however it is split.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator

from datatrove.data import Document, DocumentsPipeline

from stackcoder.data import fields as F
from stackcoder.data.gharchive.partition import NUMBER
from stackcoder.data.step import FileStep, is_removed


def keep_probability(
    n: int, intercept: float = 0.8007, slope: float = 0.0007, linear_until: int = 1000, cap: float = 100.0
) -> float:
    return intercept - slope * n if n <= linear_until else cap / n


def pr_rng(seed: int, purpose: str, doc: Document) -> random.Random:
    """A generator for one PR and one purpose; string seeds hash the same in every process."""
    return random.Random(f"{seed}:{purpose}:{doc.metadata[F.REPO_NAME].lower()}#{doc.metadata[NUMBER]}")


class RepositorySampler(FileStep):
    name = "🎲 per-repository sampling"
    stage = "pr_sampling"

    def __init__(
        self,
        enabled: bool = True,
        seed: int = 0,
        intercept: float = 0.8007,
        slope: float = 0.0007,
        linear_until: int = 1000,
        cap: float = 100.0,
    ):
        super().__init__()
        self.enabled, self.seed = enabled, seed
        self.curve = (intercept, slope, linear_until, cap)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        docs = list(data)
        counts = Counter(d.metadata[F.REPO_NAME].lower() for d in docs if not is_removed(d))
        for doc in docs:
            if not is_removed(doc):
                with self.track_time():
                    n = counts[doc.metadata[F.REPO_NAME].lower()]
                    keep = not self.enabled or pr_rng(self.seed, "sample", doc).random() < keep_probability(
                        n, *self.curve
                    )
                self.account(doc, None if keep else "sampled_out")
            yield doc
