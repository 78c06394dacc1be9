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

from stackcoder.data import fields as F

_COLUMNS = [F.SOURCE, F.REPO_NAME, F.LENGTH_BYTES, F.LANGUAGE, F.LICENSE_TYPE]


def _read(folder: Path, extra: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.parquet")):
        rows += pq.read_table(path, columns=_COLUMNS + extra).to_pylist()
    return rows


def step_times(logging_dir: Path, step_stages: list[str]) -> dict[str, float]:
    """Seconds per stage (summed over tasks) from datatrove's merged stats, which list the steps
    in pipeline order."""
    path = logging_dir / "stats.json"
    if not path.is_file():
        return {}
    blocks = json.loads(path.read_text())
    times = {}
    for stage, block in zip(step_stages, blocks, strict=False):
        timing = block.get("time_stats")  # a bare 0 when the step never timed anything
        if stage:
            times[stage] = timing.get("total", 0.0) if isinstance(timing, dict) else float(timing or 0)
    return times


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
    kept = _read(kept_dir or output_dir / "files", [])
    removed = _read(removed_dir or output_dir / "removed", [F.REMOVED_STAGE, F.REMOVED_REASON])
    unknown = {r[F.REMOVED_STAGE] for r in removed} - set(stages)
    if unknown:
        raise ValueError(f"removal records name stages not in the pipeline: {sorted(unknown)}")

    removed_by = defaultdict(lambda: defaultdict(lambda: [0, 0]))  # stage -> reason -> [files, bytes]
    for r in removed:
        cell = removed_by[r[F.REMOVED_STAGE]][r[F.REMOVED_REASON]]
        cell[0] += 1
        cell[1] += r[F.LENGTH_BYTES] or 0
    for stage, reasons in (unwritten or {}).items():
        for reason, count in reasons.items():
            removed_by[stage][reason][0] += count["files"]
            removed_by[stage][reason][1] += count["bytes"]
    n_unwritten = sum(c["files"] for reasons in (unwritten or {}).values() for c in reasons.values())
    b_unwritten = sum(c["bytes"] for reasons in (unwritten or {}).values() for c in reasons.values())
    files_in = len(kept) + len(removed) + n_unwritten
    bytes_in = sum(r[F.LENGTH_BYTES] or 0 for r in kept + removed) + b_unwritten
    seen_files, seen_bytes = files_in, bytes_in
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
                "time_s": round((times or {}).get(stage, 0.0), 3),
            }
        )
        files_in, bytes_in = out_files, out_bytes

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

    languages: Counter[str] = Counter()
    language_bytes: Counter[str] = Counter()
    licenses: Counter[str] = Counter()
    for r in kept:
        languages[r[F.LANGUAGE]] += 1
        language_bytes[r[F.LANGUAGE]] += r[F.LENGTH_BYTES] or 0
        licenses[r[F.LICENSE_TYPE]] += 1
    return {
        "totals": {
            "files_seen": seen_files,
            "bytes_seen": seen_bytes,
            "files_kept": len(kept),
            "bytes_kept": sum(r[F.LENGTH_BYTES] or 0 for r in kept),
            "files_removed": len(removed) + n_unwritten,
            "files_opted_out": n_unwritten,
            "repositories_kept": len({r[F.REPO_NAME] for r in kept}),
        },
        "stages": funnel,
        "sources": [sources[k] for k in sorted(sources)],
        "languages": {k: {"files": v, "bytes": language_bytes[k]} for k, v in languages.most_common()},
        "license_types": dict(licenses.most_common()),
    }


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


def step_counters(logging_dir: Path, index: int) -> dict[str, float]:
    """The counters of the ``index``-th step of a pass (datatrove's merged stats), name -> total."""
    path = logging_dir / "stats.json"
    if not path.is_file():
        return {}
    blocks = json.loads(path.read_text())
    if index >= len(blocks):
        return {}
    # datatrove stores a counter updated with 1s as a bare number, others as a dict with "total"
    return {
        name: metric.get("total", 0) if isinstance(metric, dict) else metric
        for name, metric in blocks[index].get("stats", {}).items()
    }
