"""``DIR/stats.json`` and the printed summary, computed from what was written.

The counts come from the output files themselves (``files/`` and ``removed/``), not from step
counters, so the summary cannot disagree with the data: a stage's input is everything that
reached it, its output is its input minus what it removed. Timings come from datatrove's merged
step stats.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from datatrove.pipeline.base import PipelineStep

from stackcoder.data import fields as F
from stackcoder.data.layout import DatasetLayout
from stackcoder.data.writer import OPT_OUT_STAGE

FILTER_PASS, FINAL_PASS = "filter", "final"  # the build's passes whose steps the funnel reports
PII_STAGE = "pii"
_COLUMNS = [F.SOURCE, F.REPO_NAME, F.LENGTH_BYTES, F.LANGUAGE, F.LICENSE_TYPE]


def _read(folder: Path, extra: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.parquet")):
        rows += pq.read_table(path, columns=_COLUMNS + extra).to_pylist()
    return rows


def _step_blocks(logging_dir: Path) -> dict[str, dict[str, Any]]:
    """datatrove's merged stats of a pass, by step: each block is filed under ``str(step)``."""
    path = logging_dir / "stats.json"
    if not path.is_file():
        return {}
    return {block["name"]: block for block in json.loads(path.read_text())}


def step_times(logging_dir: Path, stages: dict[str, str]) -> dict[str, float]:
    """Seconds per stage (summed over tasks) from datatrove's merged stats; ``stages`` maps each step
    of the pass (``str(step)``, the name its stats are filed under) to its stage ("" for none), in
    pipeline order."""
    blocks = _step_blocks(logging_dir)
    times = {}
    for label, stage in stages.items():
        if stage and label in blocks:
            timing = blocks[label].get("time_stats")  # a bare 0 when the step never timed anything
            times[stage] = timing.get("total", 0.0) if isinstance(timing, dict) else float(timing or 0)
    return times


def step_stages(steps: list[PipelineStep], first: str | None = None) -> dict[str, str]:
    """Each step's stage by its name, for ``step_times``; ``first`` names the first step's (the
    reader's time is the build's ``ingest``)."""
    stages = {str(s): getattr(s, "stage", "") or "" for s in steps}
    if first is not None and steps:
        stages[str(steps[0])] = first
    return stages


def summarize(
    output_dir: Path,
    stages: list[str],
    times: dict[str, float] | None = None,
    unwritten: dict[str, dict[str, dict[str, int]]] | None = None,
    kept_dir: Path | None = None,
    removed_dir: Path | None = None,
) -> dict[str, Any]:
    """Funnel per stage and reason, per source, languages and license classes of what was kept.

    ``unwritten`` adds removals that are deliberately in no output file (opt-out: stage -> reason ->
    ``{"files", "bytes"}``, from the step's own counters); they count in the funnel and the totals
    but not per source. ``kept_dir`` and ``removed_dir`` replace ``files/`` and ``removed/`` (a part of the
    other sources, ``data/parts``: its records have the columns read here).
    """
    kept = _read(kept_dir or DatasetLayout(output_dir).files, [])
    removed = _read(removed_dir or DatasetLayout(output_dir).removed, [F.REMOVED_STAGE, F.REMOVED_REASON])
    unknown = {r[F.REMOVED_STAGE] for r in removed} - set(stages)
    if unknown:
        raise ValueError(f"removal records name stages not in the pipeline: {sorted(unknown)}")
    totals, funnel = funnel_report(kept, removed, stages, times or {}, unwritten or {})
    return {
        "totals": totals,
        "stages": funnel,
        "sources": source_report(kept, removed),
        **language_report(kept),
    }


def funnel_report(
    kept: list[dict[str, Any]],
    removed: list[dict[str, Any]],
    stages: list[str],
    times: dict[str, float],
    unwritten: dict[str, dict[str, dict[str, int]]],
) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """The totals, and per stage its input, output and removals by reason: a stage's input is
    everything that reached it, its output its input minus what it removed."""
    removed_by = defaultdict(lambda: defaultdict(lambda: [0, 0]))  # stage -> reason -> [files, bytes]
    for r in removed:
        cell = removed_by[r[F.REMOVED_STAGE]][r[F.REMOVED_REASON]]
        cell[0] += 1
        cell[1] += r[F.LENGTH_BYTES] or 0
    for stage, reasons in unwritten.items():
        for reason, count in reasons.items():
            removed_by[stage][reason][0] += count["files"]
            removed_by[stage][reason][1] += count["bytes"]
    n_unwritten = sum(c["files"] for reasons in unwritten.values() for c in reasons.values())
    b_unwritten = sum(c["bytes"] for reasons in unwritten.values() for c in reasons.values())
    files_in = len(kept) + len(removed) + n_unwritten
    bytes_in = sum(r[F.LENGTH_BYTES] or 0 for r in kept + removed) + b_unwritten
    totals = {
        "files_seen": files_in,
        "bytes_seen": bytes_in,
        "files_kept": len(kept),
        "bytes_kept": sum(r[F.LENGTH_BYTES] or 0 for r in kept),
        "files_removed": len(removed) + n_unwritten,
        "files_opted_out": n_unwritten,
        "repositories_kept": len({r[F.REPO_NAME] for r in kept}),
    }
    funnel = []
    for stage in stages:
        reasons = {k: {"files": v[0], "bytes": v[1]} for k, v in sorted(removed_by[stage].items())}
        out_files = files_in - sum(v["files"] for v in reasons.values())
        out_bytes = bytes_in - sum(v["bytes"] for v in reasons.values())
        funnel.append(
            {
                "stage": stage,
                "files_in": files_in,
                "bytes_in": bytes_in,
                "files_out": out_files,
                "bytes_out": out_bytes,
                "removed": reasons,
                "time_s": round(times.get(stage, 0.0), 3),
            }
        )
        files_in, bytes_in = out_files, out_bytes
    return totals, funnel


def source_report(kept: list[dict[str, Any]], removed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per source (sorted by label): its repositories and files and bytes kept, removed and seen."""
    sources: dict[str, dict[str, Any]] = {}
    for rows, key in ((kept, "kept"), (removed, "removed")):
        for r in rows:
            s = sources.setdefault(
                r[F.SOURCE],
                {
                    "source": r[F.SOURCE],
                    "repo_names": set(),
                    "files_kept": 0,
                    "files_removed": 0,
                    "bytes_kept": 0,
                    "bytes_removed": 0,
                },
            )
            s["repo_names"].add(r[F.REPO_NAME])
            s[f"files_{key}"] += 1
            s[f"bytes_{key}"] += r[F.LENGTH_BYTES] or 0
    for s in sources.values():
        s["repo_names"] = sorted(s["repo_names"])
        s["files_seen"] = s["files_kept"] + s["files_removed"]
    return [sources[k] for k in sorted(sources)]


def language_report(kept: list[dict[str, Any]]) -> dict[str, Any]:
    """Languages (files and bytes) and license classes (files) of what was kept, most common first."""
    languages: Counter[str] = Counter()
    language_bytes: Counter[str] = Counter()
    licenses: Counter[str] = Counter()
    for r in kept:
        languages[r[F.LANGUAGE]] += 1
        language_bytes[r[F.LANGUAGE]] += r[F.LENGTH_BYTES] or 0
        licenses[r[F.LICENSE_TYPE]] += 1
    return {
        "languages": {k: {"files": v, "bytes": language_bytes[k]} for k, v in languages.most_common()},
        "license_types": dict(licenses.most_common()),
    }


def files_report(
    layout: DatasetLayout, filter_steps: list[PipelineStep], final_steps: list[PipelineStep]
) -> dict[str, Any]:
    """The files' report of a build (``stats.json`` up to ``pii``): ``summarize`` over ``files/`` and
    ``removed/`` with the filter and final passes' stages and times, the opted-out files (counted by
    the opt-out step, written nowhere) and what PII redaction counted. Steps are found by their
    stage and their stats by their name, so adding a step changes nothing here."""
    first_logs, final_logs = layout.logs(FILTER_PASS), layout.logs(FINAL_PASS)
    times = step_times(first_logs, step_stages(filter_steps, first="ingest"))
    times |= step_times(final_logs, step_stages(final_steps))
    optout = step_counters(first_logs, stage_step(filter_steps, OPT_OUT_STAGE))
    n_opted_out, b_opted_out = int(optout.get("dropped", 0)), int(optout.get("bytes_dropped", 0))
    unwritten = (
        {OPT_OUT_STAGE: {"opted_out": {"files": n_opted_out, "bytes": b_opted_out}}} if n_opted_out else {}
    )
    stages = ["ingest", *stages_of(filter_steps), *stages_of(final_steps)]
    stats = summarize(layout.root, stages, times, unwritten)
    stats["pii"] = pii_counts(final_logs, final_steps)
    return stats


def pii_counts(logging_dir: Path, steps: list[PipelineStep]) -> dict[str, int]:
    """What the PII step of a pass counted (``pii_<kind>`` counters), by kind."""
    pii = step_counters(logging_dir, stage_step(steps, PII_STAGE))
    return {k.removeprefix("pii_"): int(v) for k, v in sorted(pii.items()) if k.startswith("pii_")}


def stages_of(steps: list[PipelineStep]) -> list[str]:
    """The funnel's stages in pipeline order: every step that may remove files names its stage(s)."""
    names: list[str] = []
    for step in steps:
        names += list(getattr(step, "stages", ()) or ([step.stage] if getattr(step, "stage", "") else []))
    return names


def _mb(n: int) -> str:
    return f"{n / 1e6:,.2f}"


def format_summary(stats: dict[str, Any], top_reasons: int = 3) -> str:
    """The funnel as a fixed-width table, one row per stage."""
    header = (
        f"{'stage':<20}{'files in':>10}{'removed':>9}{'files out':>11}{'MB in':>10}{'MB out':>10}  reasons"
    )
    lines = [header, "-" * len(header)]
    for s in stats["stages"]:
        reasons = sorted(s["removed"].items(), key=lambda kv: -kv[1]["files"])
        shown = ", ".join(f"{k} {v['files']}" for k, v in reasons[:top_reasons])
        if len(reasons) > top_reasons:
            shown += ", ..."
        lines.append(
            f"{s['stage']:<20}{s['files_in']:>10,}{s['files_in'] - s['files_out']:>9,}{s['files_out']:>11,}"
            f"{_mb(s['bytes_in']):>10}{_mb(s['bytes_out']):>10}  {shown}"
        )
    t = stats["totals"]
    langs = ", ".join(f"{k} {v['files']}" for k, v in list(stats["languages"].items())[:6])
    lic = ", ".join(f"{k} {v}" for k, v in stats["license_types"].items())
    lines += [
        "",
        f"kept {t['files_kept']:,} of {t['files_seen']:,} files ({_mb(t['bytes_kept'])} of "
        f"{_mb(t['bytes_seen'])} MB) from {t['repositories_kept']:,} repositories",
        f"languages: {langs}" if langs else "languages: -",
        f"licenses: {lic}" if lic else "licenses: -",
    ]
    if stats.get("pii"):
        lines.append(
            "pii redacted: " + ", ".join(f"{k} {v}" for k, v in stats["pii"].items() if k != "files")
        )
    if stats.get("documents"):
        d = stats["documents"]
        lines.append(f"documents: {d.get('documents', 0):,} ({d.get('parts', 0):,} parts)")
    if stats.get("events"):  # --events: GHArchive dumps (data/gharchive)
        e = stats["events"]
        skipped = ", ".join(f"{k} {v:,}" for k, v in e["skipped"].items()) or "none"
        lines.append(
            f"events: {e['lines']:,} lines in {e['files']:,} dumps, {sum(e['events'].values()):,} issue/PR "
            f"events, {e['opted_out']:,} opted out; skipped: {skipped}"
        )
    return "\n".join(lines)


def step_counters(logging_dir: Path, step: PipelineStep) -> dict[str, float]:
    """The counters of one step of a pass (datatrove's merged stats), name -> total."""
    block = _step_blocks(logging_dir).get(str(step), {})
    # datatrove stores a counter updated with 1s as a bare number, others as a dict with "total"
    return {
        name: metric.get("total", 0) if isinstance(metric, dict) else metric
        for name, metric in block.get("stats", {}).items()
    }


def stage_step(steps: list[PipelineStep], stage: str) -> PipelineStep:
    """The step of a pass that removes files under ``stage`` (``opt_out``, ``pii``)."""
    return next(s for s in steps if getattr(s, "stage", "") == stage)
