"""A part's passes: intake, then the recipe's part-2 stages on its own records (recipe.md §1 stages
4-8, §6: "near-dedup, malware scan, decontamination, opt-out and PII apply to PRs, issues and
notebooks").

``plan_part`` lays out one part of a build (``PartLayout``) and returns its passes in order:

1. ``<part>.intake`` (T tasks; only when the source has its own reader): the source's steps, then
   ``PartWriter`` to ``work/<part>/filtered/<rank>.parquet`` and ``removed/<part>/intake-<rank>``.
   Notebooks have no intake pass: they are made in the file filter pass, which writes the same shards.
2. ``<part>.exact_records`` ... ``<part>.near_clusters``: ``data/dedup``'s passes, unchanged, over
   ``work/<part>/`` (exact and near duplicates within the part only; near dedup per ``language``).
3. ``<part>.final`` (T tasks, task r reads shard r): dedup removals, PII, decontamination, malware,
   then ``PartWriter`` to ``DIR/<part>/`` and ``removed/<part>/final-<rank>``.

Which of those stages run is the part's ``PartSteps`` (recipe.toml ``[jupyter.steps]``, ``[text.*]``);
their settings (MinHash parameters, PII seed, benchmarks, ClamAV database) are the file build's.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from datatrove.pipeline.base import PipelineStep

from stackcoder.data.decontaminate import Decontaminator
from stackcoder.data.dedup import dedup_filters, dedup_passes, dedup_stats
from stackcoder.data.executor import Pass
from stackcoder.data.layout import LOGS, REMOVED, WORK
from stackcoder.data.malware import MalwareScanner
from stackcoder.data.parts.writer import PartWriter
from stackcoder.data.pii import PiiRedactor
from stackcoder.data.readers.shards import ShardReader
from stackcoder.data.report import pii_counts, step_counters, step_stages, step_times, summarize
from stackcoder.data.writer import OPT_OUT_STAGE


@dataclass(frozen=True)
class PartSteps:
    """Which part-2 stages a part goes through; every other setting is the recipe's."""

    exact_dedup: bool = True
    near_dedup: bool = True
    pii: bool = True
    decontamination: bool = True
    malware: bool = True

    @classmethod
    def from_recipe(cls, section: dict[str, Any]) -> PartSteps:
        """The stage switches of a recipe table (other keys of the table are ignored)."""
        return cls(**{f.name: bool(section[f.name]) for f in fields(cls) if f.name in section})


@dataclass(frozen=True)
class PartLayout:
    """Where a part writes: ``DIR/<name>/`` (kept), ``DIR/removed/<name>/``, ``DIR/work/<name>/``,
    ``DIR/logs/<name>.<pass>/`` (the build's folders, ``data/layout.py``). ``name`` may hold a ``/``
    (``text/docs``)."""

    root: Path
    name: str

    @property
    def kept(self) -> Path:
        return self.root / self.name

    @property
    def removed(self) -> Path:
        return self.root / REMOVED / self.name

    @property
    def work(self) -> Path:
        return self.root / WORK / self.name

    @property
    def filtered(self) -> Path:
        """The intake's kept records, one shard per task: what the dedup and final passes read."""
        return self.work / "filtered"

    def pass_name(self, name: str) -> str:
        return f"{self.name.replace('/', '-')}.{name}"

    def logs(self, pass_name: str) -> Path:
        return self.root / LOGS / self.pass_name(pass_name)

    def intake_writer(self) -> PartWriter:
        """The intake's last step (or what a step that makes records writes with, ``PartSink``)."""
        return PartWriter(str(self.filtered), str(self.removed), "intake", work=True)


@dataclass
class Part:
    """One part of a build: its passes in order and what its stats are computed from."""

    layout: PartLayout
    passes: list[Pass]
    stages: list[str]  # the funnel's stages in order: intake stages, then the final pass's
    # (logging dir of a pass, its steps' stages by step name, report.step_stages): where stage times are read
    timed: list[tuple[Path, dict[str, str]]] = field(default_factory=list)
    final: Pass | None = None
    # (logging dir, step) of the intake's opt-out step: its records are written nowhere, so the
    # funnel takes their count from the step's own counters, as the files' does
    opt_out: tuple[Path, PipelineStep] | None = None


def stage_names(steps: list[PipelineStep]) -> list[str]:
    """The stage of each step ("" for a step that removes nothing), aligned with ``steps``."""
    return [getattr(step, "stage", "") or "" for step in steps]


def _recipe_for(recipe: dict[str, Any], steps: PartSteps) -> dict[str, Any]:
    """The recipe with the part's own dedup switches (the MinHash parameters stay the recipe's)."""
    part = copy.deepcopy(recipe)
    part["dedup"]["exact"]["enabled"] = steps.exact_dedup
    part["dedup"]["near"]["enabled"] = steps.near_dedup
    return part


def final_steps(
    layout: PartLayout,
    recipe: dict[str, Any],
    steps: PartSteps,
    buckets: int,
    benchmark_files: dict[str, str] | None = None,
) -> list[PipelineStep]:
    """Stages 4-8 on the part's shards, then ``DIR/<part>/`` and ``removed/<part>/final-<rank>``."""
    pii = {**recipe["pii"], "enabled": steps.pii}
    chain: list[PipelineStep] = [
        ShardReader(str(layout.filtered)),
        *dedup_filters(layout.work, buckets, _recipe_for(recipe, steps)),
        PiiRedactor(**pii),
    ]
    if steps.decontamination:
        chain.append(Decontaminator(**recipe["decontamination"], benchmark_files=benchmark_files))
    if steps.malware:
        chain.append(MalwareScanner(**recipe["malware"]))
    chain.append(PartWriter(str(layout.kept), str(layout.removed), "final"))
    return chain


def plan_part(
    layout: PartLayout,
    *,
    recipe: dict[str, Any],
    steps: PartSteps,
    tasks: int,
    buckets: int,
    benchmark_files: dict[str, str] | None = None,
    intake: list[PipelineStep] | None = None,
    intake_stages: list[str] | None = None,
    intake_timed: tuple[Path, dict[str, str]] | None = None,
) -> Part:
    """The passes of one part. ``intake``: the source's reader and filters (``PartWriter`` is added);
    None when another pass writes ``layout.filtered`` (then ``intake_stages`` names the stages it
    records removals under, and ``intake_timed`` where their times are). ``tasks`` must be the
    number of shards the intake writes."""
    passes: list[Pass] = []
    stages = list(intake_stages or [])
    timed = [intake_timed] if intake_timed else []
    opt_out = None
    if intake is not None:
        chain = [*intake, layout.intake_writer()]
        passes.append(Pass(layout.pass_name("intake"), chain, tasks))
        stages = [s for s in stage_names(chain) if s]
        timed.append((layout.logs("intake"), step_stages(chain)))
        at = [step for step in chain if getattr(step, "stage", "") == OPT_OUT_STAGE]
        opt_out = (layout.logs("intake"), at[0]) if at else None
    for p in dedup_passes(layout.work, tasks, buckets, _recipe_for(recipe, steps)):
        passes.append(replace(p, name=layout.pass_name(p.name)))
    chain = final_steps(layout, recipe, steps, buckets, benchmark_files)
    final = Pass(layout.pass_name("final"), chain, tasks)
    passes.append(final)
    stages += [s for s in stage_names(chain) if s]
    timed.append((layout.logs("final"), step_stages(chain)))
    return Part(layout, passes, stages, timed, final, opt_out)


def part_stats(part: Part) -> dict[str, Any]:
    """The part's funnel (per stage and reason, computed from what was written; ``files_*`` count
    records), per source, languages and license classes, its dedup and PII counts."""
    times: dict[str, float] = {}
    for logs, stages in part.timed:
        for stage, seconds in step_times(logs, stages).items():
            times[stage] = times.get(stage, 0.0) + seconds
    unwritten = {}
    if part.opt_out is not None:
        counts = step_counters(*part.opt_out)
        if n := int(counts.get("dropped", 0)):
            unwritten = {
                OPT_OUT_STAGE: {"opted_out": {"files": n, "bytes": int(counts.get("bytes_dropped", 0))}}
            }
    stats = summarize(
        part.layout.root,
        part.stages,
        times,
        unwritten,
        kept_dir=part.layout.kept,
        removed_dir=part.layout.removed,
    )
    if part.final is not None:
        stats["pii"] = pii_counts(part.layout.logs("final"), part.final.steps)
    stats["dedup"] = dedup_stats(part.layout.work)
    return stats
