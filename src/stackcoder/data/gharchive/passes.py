"""The GHArchive passes from the recipe (recipe.md §6): wiring only, no logic.

``plan_gharchive`` gives the ``events`` pass (dumps in, ``DIR/work/events/<kind>/<bucket>/`` out)
and the two parts (``data/parts``), ``issues`` and ``pull_requests``, whose intake is one task per
bucket: ``issue_steps`` / ``pull_request_steps`` end in rendered texts, ``ThreadRecords`` makes
them part records; then each part's own dedup, PII, decontamination, malware and writer passes.
``events_stats`` reads what the events pass counted (lines, damage by reason, opt-outs).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from datatrove.pipeline.base import PipelineStep

from stackcoder.data.executor import Pass
from stackcoder.data.gharchive.bots import BotNames
from stackcoder.data.gharchive.events import ISSUE_KIND, PR_KIND
from stackcoder.data.gharchive.issue_bots import IssueBotFilter
from stackcoder.data.gharchive.issue_keep import IssueKeepFilter
from stackcoder.data.gharchive.issue_render import IssueRenderer
from stackcoder.data.gharchive.issue_text import IssueTextCleaner
from stackcoder.data.gharchive.issue_thread import IssueThreadBuilder
from stackcoder.data.gharchive.optout import EventOptOut, ThreadOptOut
from stackcoder.data.gharchive.partition import EventPartitioner, ThreadReader
from stackcoder.data.gharchive.pr_contents import PullRequestContents
from stackcoder.data.gharchive.pr_filters import PullRequestFilter
from stackcoder.data.gharchive.pr_render import PullRequestRenderer
from stackcoder.data.gharchive.pr_sampling import RepositorySampler
from stackcoder.data.gharchive.pr_thread import PullRequestBuilder
from stackcoder.data.gharchive.reader import EventReader
from stackcoder.data.gharchive.records import ThreadRecords
from stackcoder.data.layout import DatasetLayout
from stackcoder.data.parts import Part, PartLayout, PartSteps, plan_part
from stackcoder.data.report import step_counters

# compressed dump bytes per bucket: a bucket's events are held in memory while its threads are
# grouped, about 1 GB of Python objects per GB of dumps (1 hour of 2023 is ~0.1-0.2 GB)
EVENT_BYTES_PER_BUCKET = 1_000_000_000
# the parts' dedup buckets, as the file build sizes them (pipeline.BYTES_PER_DEDUP_BUCKET) but per
# compressed dump byte: the rendered texts are a fraction of the dumps' uncompressed size
DEDUP_BYTES_PER_BUCKET = 2_000_000_000
MAX_EVENT_TASKS = 32


def events_dir(work: Path) -> Path:
    return Path(work) / "events"


def events_pass(files: list[str], work: Path, tasks: int, buckets: int, opt_out: list[str]) -> Pass:
    """Dumps in, opted-out events dropped, the rest bucketed by repository (one task per file group)."""
    steps = [EventReader(files), EventOptOut(opt_out), EventPartitioner(str(events_dir(work)), buckets)]
    return Pass("events", steps, tasks)


def issue_steps(recipe: dict[str, Any], work: Path) -> list[PipelineStep]:
    i = recipe["issues"]
    return [
        ThreadReader(str(events_dir(work)), ISSUE_KIND),
        IssueThreadBuilder(),
        IssueTextCleaner(i["strip_email_replies"], i["max_lines"], i["head_lines"], i["tail_lines"]),
        IssueBotFilter(BotNames.from_recipe(recipe["events"]["bots"])),
        IssueKeepFilter(
            i["min_chars"], i["min_authors"], i["max_single_author_chars"], i["max_single_author_events"]
        ),
        IssueRenderer(),
    ]


def pull_request_steps(
    recipe: dict[str, Any], work: Path, repositories: dict[str, str]
) -> list[PipelineStep]:
    """``repositories``: ``owner/name`` -> git repository path (the build's git SOURCEs)."""
    p = recipe["pull_requests"]
    return [
        ThreadReader(str(events_dir(work)), PR_KIND),
        ThreadOptOut(),
        PullRequestBuilder(),
        PullRequestFilter(
            BotNames.from_recipe(recipe["events"]["bots"]),
            min_title_chars=p["min_title_chars"],
            title_excluded_words=tuple(p["title_excluded_words"]),
            min_text_chars=p["min_text_chars"],
            keep_license_classes=tuple(p["keep_license_classes"]),
            drop_bot_entries=p["drop_bot_entries"],
        ),
        RepositorySampler(
            p["sample_per_repository"],
            p["seed"],
            p["sampling_intercept"],
            p["sampling_slope"],
            p["sampling_linear_until"],
            p["sampling_cap"],
        ),
        PullRequestContents(repositories, p["max_file_bytes"]),
        PullRequestRenderer(
            seed=p["seed"],
            min_chars=p["min_chars"],
            max_chars=p["max_chars"],
            full_base_probability=p["full_base_probability"],
            base_extra_lines=p["base_extra_lines"],
            diff_context_min=p["diff_context_min"],
            diff_context_max=p["diff_context_max"],
            min_text_chars=p["min_text_chars"],
            max_text_chars=p["max_text_chars"],
            max_title_chars=p["max_title_chars"],
        ),
    ]


def plan_gharchive(
    recipe: dict[str, Any],
    root: Path,
    event_files: list[str],
    repositories: dict[str, str],
    *,
    opt_out: list[str],
    tasks: int | None = None,
    dedup_buckets: int | None = None,
    benchmark_files: dict[str, str] | None = None,
) -> tuple[Pass, list[Part]]:
    """The events pass and the ``issues`` and ``pull_requests`` parts of a build rooted at ``root``.

    ``tasks``: tasks of the events pass (default: one per dump, at most 32). The number of buckets
    (the parts' intake tasks) follows the dumps' size, so the output never depends on ``tasks``."""
    work = DatasetLayout(root).work
    size = sum(os.path.getsize(f) for f in event_files)
    buckets = max(1, -(-size // EVENT_BYTES_PER_BUCKET))
    dedup_buckets = dedup_buckets or max(1, -(-size // DEDUP_BYTES_PER_BUCKET))
    events = events_pass(event_files, work, tasks or min(len(event_files), MAX_EVENT_TASKS), buckets, opt_out)
    parts = []
    for kind, steps in (
        (ISSUE_KIND, issue_steps(recipe, work)),
        (PR_KIND, pull_request_steps(recipe, work, repositories)),
    ):
        parts.append(
            plan_part(
                PartLayout(root, kind),
                recipe=recipe,
                steps=PartSteps.from_recipe(recipe[kind]["steps"]),
                tasks=buckets,
                buckets=dedup_buckets,
                benchmark_files=benchmark_files,
                intake=[*steps, ThreadRecords(kind)],
            )
        )
    return events, parts


def events_stats(root: Path, events: Pass) -> dict[str, Any]:
    """What the events pass counted: dumps, lines, input bytes, events per type, skipped lines per
    reason, opted-out events (counts only) and events written per kind."""
    logs = DatasetLayout(root).logs(events.name)
    read, opted, written = (step_counters(logs, step) for step in events.steps[:3])
    out: dict[str, Any] = {
        "files": int(read.get("files", 0)),
        "lines": int(read.get("lines", 0)),
        "input_bytes": int(read.get("input_bytes", 0)),
        "events": {
            k.removeprefix("events_"): int(v) for k, v in sorted(read.items()) if k.startswith("events_")
        },
        "skipped": {
            k.removeprefix("skipped_"): int(v) for k, v in sorted(read.items()) if k.startswith("skipped_")
        },
        "opted_out": int(opted.get("dropped", 0)),
        "written": {
            k.removeprefix("written_"): int(v) for k, v in sorted(written.items()) if k.startswith("written_")
        },
    }
    return out
