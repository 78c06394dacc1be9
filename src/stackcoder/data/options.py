"""``RunOptions``: where a datatrove verb (``build``, ``tokenize``, ``index build``) runs its passes,
filled by ``cli/run_flags.py`` and taken by ``data/executor.py:run_passes``; and ``TokenizeConfig``,
what `stackcoder tokenize` does (``data/tokenize.py``). Kept apart from the modules that import
datatrove, so that building the CLI's parser (every verb's ``--help``) reads these defaults without
loading it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from stackcoder.errors import UserError
from stackcoder.slurm import SlurmOptions

EXECUTORS = ("local", "ray", "slurm")


@dataclass
class RunOptions:
    """How a datatrove verb (``build``, ``tokenize``, ``index build``) runs its passes; the flags of
    ``cli/run_flags.py``. None of it changes the output."""

    executor: str = "local"
    workers: int | None = None  # tasks at once; None: one per core (local, Ray), no limit (Slurm)
    ray_address: str | None = None  # join this Ray cluster (default: start a local one)
    progress: bool = True
    slurm: SlurmOptions = field(default_factory=SlurmOptions)

    def check(self) -> None:
        if self.executor not in EXECUTORS:
            raise UserError(f"unknown executor {self.executor!r} (choose from {', '.join(EXECUTORS)})")
        if self.workers is not None and self.workers < 1:
            raise UserError("--workers must be at least 1")
        if self.executor == "slurm":
            self.slurm.check()

    def workers_for(self, tasks: int) -> int:
        """Processes for a pass of ``tasks`` tasks here or on Ray (on Slurm, ``workers`` caps how many
        elements of a pass's job array run at once: ``--array=0-N%workers``)."""
        return max(1, min(self.workers or os.cpu_count() or 1, tasks))


@dataclass
class TokenizeConfig:
    dataset: str  # a directory built by `stackcoder build` (its documents/ and parts), or a documents folder
    tokenizer: str  # a directory holding tokenizer.json, or the file
    output: str | None = None  # default: DATASET/tokens
    valid_fraction: float = 0.05
    seed: int = 0
    overwrite: bool = False
    run: RunOptions = field(default_factory=RunOptions)
    # the mix (data/mix.py): no sources = DATASET's documents and every part with records;
    # "NAME" = DATASET's NAME/, "NAME=PATH" = a folder elsewhere
    sources: list[str] = field(default_factory=list)
    epochs: dict[str, float] = field(default_factory=dict)  # relative epochs per source (default 1)
    weights: dict[str, float] = field(default_factory=dict)  # or: the probability weight of each
    fim: dict[str, str] = field(default_factory=dict)  # FIM mode per source (mix.DEFAULT_FIM)
