"""``stackcoder build``: check the inputs, size the passes, prepare ``DIR`` and run the recipe's
passes (``data/pipeline.py`` wires them); then ``stats.json`` and the dataset card (``README.md``)
are written from the output files (``finish_build``: on Slurm, a last job after the passes).

``DIR``'s parts are named in ``data/layout.py``; ``build.json`` records the settings that decide the
output, and the one output rule (``stackcoder/output.py``) resumes a build with the same settings.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from stackcoder.data.card import write_card
from stackcoder.data.dedup import dedup_passes, dedup_stats
from stackcoder.data.executor import Pass, RunOptions, run_passes
from stackcoder.data.extras import parse_text_input
from stackcoder.data.gharchive.events import event_files
from stackcoder.data.gharchive.passes import events_stats, plan_gharchive
from stackcoder.data.layout import BUILD_JSON, BUILD_OUTPUTS, DatasetLayout
from stackcoder.data.optout import load_optout
from stackcoder.data.parts import Part, part_stats
from stackcoder.data.pipeline import (
    BYTES_PER_DEDUP_BUCKET,
    MAX_DEFAULT_TASKS,
    filter_pass,
    final_pass,
    other_parts,
)
from stackcoder.data.readers.sources import Source, discover_sources
from stackcoder.data.recipe import load_recipe
from stackcoder.data.repo_docs import summarize_documents
from stackcoder.data.report import files_report
from stackcoder.errors import UserError
from stackcoder.output import OutputRule, json_record, prepare_output

# resume a build with identical settings; refuse to mix a different run into the same folder;
# --overwrite removes what a build writes (nothing else in DIR)
OUTPUT = OutputRule("build", BUILD_JSON, json_record(indent=2, sort_keys=True), parts=BUILD_OUTPUTS)


@dataclass
class BuildConfig:
    sources: list[str]
    output: Path
    repos_dir: bool = False
    source_type: str = "auto"
    repo_metadata: str | None = None
    recipe: str | None = None
    opt_out_files: list[str] = field(default_factory=list)
    benchmark_files: dict[str, str] = field(default_factory=dict)  # --benchmark NAME=PATH
    texts: list[str] = field(default_factory=list)  # --text [KIND=]FILE (recipe.md §6, data/extras.py)
    events: list[str] = field(default_factory=list)  # --events: GHArchive dumps (data/gharchive)
    tasks: int | None = None  # default: one per source, at most MAX_DEFAULT_TASKS
    overwrite: bool = False
    run: RunOptions = field(default_factory=RunOptions)


@dataclass
class BuildResult:
    output: Path
    stats: dict[str, Any] | None  # None: submitted to Slurm, still running (`stackcoder status DIR`)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _without_opt_out(recipe: dict[str, Any]) -> dict[str, Any]:
    """The recipe as outputs may show it: the opt-out patterns replaced by how many there were."""
    shown = copy.deepcopy(recipe)
    shown["opt_out"]["owners_and_repos"] = [
        f"({len(recipe['opt_out']['owners_and_repos'])} patterns, not shown)"
    ]
    return shown


def build(config: BuildConfig) -> BuildResult:
    """Build the dataset: validate the sources, run the passes, write ``stats.json`` and the card."""
    config.run.check()
    recipe = load_recipe(config.recipe)
    ingest = recipe["ingest"]
    events = event_files(config.events)
    texts = [parse_text_input(spec) for spec in config.texts]
    if not config.sources and not events and not texts:
        raise UserError(
            "no SOURCE given (or --events FILE for GHArchive issues and pull requests, --text FILE for text)"
        )
    # with --events or --text alone the file passes run on no repository: files/ is empty
    sources = (
        discover_sources(
            config.sources,
            repos_dir=config.repos_dir,
            source_type=config.source_type,
            repo_metadata=config.repo_metadata,
            max_archive_bytes=ingest["max_archive_bytes"],
            max_archive_members=ingest["max_archive_members"],
        )
        if config.sources
        else []
    )
    if config.sources and not sources:
        raise UserError("no repositories found in the given sources")
    tasks = config.tasks or max(1, min(len(sources), MAX_DEFAULT_TASKS))
    if tasks < 1:
        raise UserError("--tasks must be at least 1")
    opt_out = sorted(
        set(recipe["opt_out"]["owners_and_repos"]).union(*(load_optout(p) for p in config.opt_out_files))
    )
    buckets = max(1, min(tasks, -(-sum(s.size_bytes for s in sources) // BYTES_PER_DEDUP_BUCKET)))
    out = DatasetLayout(Path(config.output))
    # what decides the output: resuming is only safe when all of it is unchanged
    # sources and the opt-out list only as digests: a source's path or an opt-out pattern can name an
    # opted-out repository, and nothing of those may appear in any output
    settings = {
        "recipe": _without_opt_out(recipe),
        "sources": {"count": len(sources), "sha256": _digest([asdict(s) for s in sources])},
        "opt_out": {"count": len(opt_out), "sha256": _digest(opt_out)},
        "tasks": tasks,
        "dedup_buckets": buckets,
        "benchmarks": config.benchmark_files,
    }
    if texts:  # as digests, like the sources
        settings["text"] = {"count": len(texts), "sha256": _digest([asdict(t) for t in texts])}
    if events:
        dumps = [[os.path.realpath(e), os.path.getsize(e)] for e in events]
        settings["events"] = {"count": len(events), "sha256": _digest(dumps)}
    prepare_output(out.root, settings, config.overwrite, OUTPUT)

    passes = [
        filter_pass(recipe, sources, out, tasks, opt_out),
        *dedup_passes(out.work, tasks, buckets, recipe),
        final_pass(recipe, out, tasks, buckets, config.benchmark_files),
    ]
    parts = other_parts(recipe, out, passes[0], texts, tasks, buckets, config.benchmark_files, opt_out)
    first, final, events_pass = passes[0], passes[-1], None
    if events:  # PR contents come from the build's git SOURCEs, by owner/name
        repositories = {s.repo_name: s.path for s in sources if s.kind == "git"}
        events_pass, issue_parts = plan_gharchive(
            recipe, out.root, events, repositories, opt_out=opt_out, benchmark_files=config.benchmark_files
        )
        passes.append(events_pass)
        parts += issue_parts
    finish = partial(finish_build, out, recipe, sources, first, final, tasks, parts, events_pass)
    passes += [p for part in parts for p in part.passes]
    if not run_passes(passes, logs=out.logs(), options=config.run, finish=finish):
        return BuildResult(out.root, None)
    return BuildResult(out.root, json.loads(out.stats.read_text()))


def finish_build(
    out: DatasetLayout,
    recipe: dict[str, Any],
    sources: list[Source],
    first: Pass,
    final: Pass,
    tasks: int,
    parts: list[Part] | None = None,
    events: Pass | None = None,
) -> None:
    """``stats.json`` and the dataset card, from the passes' outputs and per-task stats."""
    stats = files_report(out, first.steps, final.steps)
    stats["dedup"] = dedup_stats(out.work)
    stats["documents"] = summarize_documents(out.root)
    stats["recipe"] = recipe.get("name")
    stats["tasks"] = tasks
    if parts:  # the other sources (recipe.md §6): the same funnel per part, counting records
        stats["parts"] = {part.layout.name: part_stats(part) for part in parts}
    if events is not None:  # GHArchive: lines read, damaged lines by reason, opted-out events
        stats["events"] = events_stats(out.root, events)
    out.stats.write_text(json.dumps(stats, indent=2) + "\n")
    # only sources with something written: one whose repositories were all opted out is not named
    written = {row["source"] for row in stats["sources"]}
    shown = [asdict(s) for s in sources if s.label in written]
    write_card(out.root, stats, _without_opt_out(recipe), shown)
