"""The dataset card (issue 3): ``DIR/README.md`` in the Hugging Face dataset-card format, for the
data that recipe.md §1-2 builds, with the plots ``funnel.png`` and ``languages.png`` beside it.

The YAML front matter declares two configs, ``files`` (``files/*.parquet``, the default) and
``documents`` (``documents/*.parquet``), so ``datasets.load_dataset(DIR, "files")`` works on the
folder as on the Hub. The markdown gives the sources, the recipe (its TOML, re-loadable), the
funnel per stage and reason, languages, license classes and whatever part-2 stages reported
(dedup clusters, PII counts, ...). Every number comes from ``stats`` (``report.summarize``'s
shape) or ``extra``; a missing key leaves its section saying so.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from stackcoder.data import fields as F
from stackcoder.data.layout import CARD, FUNNEL_PNG, LANGUAGES_PNG, TOKENS_JSON, DatasetLayout

PAPER = "https://arxiv.org/abs/2402.19173"
# the part-2 reports a card knows by name, in recipe order; other keys of ``extra`` follow
SECTIONS = {
    "opt_out": "Opt-out",
    "dedup": "Deduplication",
    "pii": "PII redaction",
    "decontamination": "Decontamination",
    "malware": "Malware scan",
    "documents": "Repository documents",
}
ALWAYS = ("dedup", "pii")  # shown even when the build did not report them
TOP_LANGUAGES = 20
MAX_ROWS = 50
# the Hub's size buckets (huggingface_hub DatasetCardData.size_categories), by upper bound
_SIZES = [(10**3, "n<1K"), (10**4, "1K<n<10K"), (10**5, "10K<n<100K"), (10**6, "100K<n<1M")]
_SIZES += [(10**7, "1M<n<10M"), (10**8, "10M<n<100M"), (10**9, "100M<n<1B"), (10**10, "1B<n<10B")]
_SIZES += [(10**11, "10B<n<100B"), (10**12, "100B<n<1T")]


def size_category(n: int) -> str:
    return next((label for bound, label in _SIZES if n < bound), "n>1T")


def front_matter(stats: dict[str, Any], recipe: dict[str, Any]) -> dict[str, Any]:
    """The card's YAML metadata (https://github.com/huggingface/hub-docs/blob/main/datasetcard.md)."""
    n_files = stats.get("totals", {}).get("files_kept", 0)

    def config(name: str, **more: Any) -> dict[str, Any]:
        return {"config_name": name, **more, "data_files": [{"split": "train", "path": f"{name}/*.parquet"}]}

    return {
        "pretty_name": f"stackcoder: {recipe.get('name', 'the-stack-v2')}",
        # every file keeps its own repository's license; no single license covers the set
        "license": "other",
        "license_name": "per-file-licenses",
        "language": ["code"],
        "task_categories": ["text-generation"],
        "tags": ["code", "the-stack-v2", "starcoder2", "stackcoder"],
        "size_categories": [size_category(n_files)],
        "configs": [config("files", default=True), config("documents")]
        # the other sources (recipe.md §6): one config per part that kept records, named by its
        # folder ("/" -> "_"); a part without records has no files to load
        + [
            {**config(name), "config_name": name.replace("/", "_")}
            for name, part in stats.get("parts", {}).items()
            if part["totals"]["files_kept"]
        ],
    }


def recipe_toml(recipe: dict[str, Any]) -> str:
    """``recipe`` as TOML that ``tomllib`` reads back equal (scalars, lists, nested tables only)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)  # JSON string escapes are valid TOML basic-string escapes
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise TypeError(f"cannot write {type(v).__name__} as TOML")

    lines: list[str] = []

    def table(d: dict[str, Any], prefix: str) -> None:
        subs = {k: v for k, v in d.items() if isinstance(v, dict)}
        if prefix and any(k not in subs for k in d):
            lines.append(f"\n[{prefix}]")
        lines.extend(f"{k} = {value(v)}" for k, v in d.items() if k not in subs)
        for k, v in subs.items():
            table(v, f"{prefix}.{k}" if prefix else k)

    table(recipe, "")
    return "\n".join(lines).strip() + "\n"


def _n(x: int | float | None) -> str:
    return "-" if x is None else f"{x:,}"


def _cell(x: Any) -> str:
    # a "|" inside a cell would end it, even inside backticks
    return str(x).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def _flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            rows += _flatten(v, key)
        else:
            rows.append((key, v))
    return rows


def _report(title: str, report: Any) -> list[str]:
    """A part-2 stage's report: scalars as a key/value table, lists of records as tables."""
    lines = [f"## {title}", ""]
    if report is None:
        return lines + ["Not recorded for this build.", ""]
    if not isinstance(report, dict):
        return lines + [f"`{report}`", ""]
    scalars, tables = [], []
    for key, v in _flatten(report):
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            tables.append((key, v))
        elif isinstance(v, list):
            scalars.append([key, ", ".join(map(str, v)) or "-"])
        else:
            scalars.append([key, _n(v) if isinstance(v, int | float) and not isinstance(v, bool) else v])
    if scalars:
        lines += _table(["", "value"], scalars) + [""]
    for key, records in tables:
        columns = list(dict.fromkeys(k for r in records for k in r))
        shown = records[:MAX_ROWS]
        lines += [
            f"**{key}**" + (f" (first {MAX_ROWS} of {len(records)})" if len(records) > MAX_ROWS else "")
        ]
        lines += [""] + _table(columns, [[r.get(c, "") for c in columns] for r in shown]) + [""]
    return lines


def _removed_cell(removed: dict[str, dict[str, int]]) -> str:
    return ", ".join(f"{k} {v['files']:,} ({v['bytes']:,} B)" for k, v in removed.items()) or "-"


def funnel_section(stats: dict[str, Any]) -> list[str]:
    stages = stats.get("stages", [])
    header = ["stage", "files in", "files out", "bytes in", "bytes out", "removed (files, bytes) by reason"]
    rows = [
        [f"`{s['stage']}`", _n(s["files_in"]), _n(s["files_out"]), _n(s["bytes_in"]), _n(s["bytes_out"])]
        + [_removed_cell(s.get("removed", {}))]
        for s in stages
    ]
    lines = ["## Funnel", ""]
    if not rows:
        return lines + ["No stages recorded.", ""]
    lines += [
        "Every file the sources hold enters the first stage; each stage removes some, for the reasons "
        "listed, and never drops one silently (removed files are in `removed/`, with stage and reason).",
        "",
    ]
    return lines + _table(header, rows) + ["", f"![files and bytes after each stage]({FUNNEL_PNG})", ""]


def sources_section(stats: dict[str, Any], sources: list[dict[str, Any]]) -> list[str]:
    counted = {s["source"]: s for s in stats.get("sources", [])}
    kinds = Counter(s.get("kind", "?") for s in sources)
    repos = {r for s in counted.values() for r in s.get("repo_names", [])}
    lines = ["## Sources", ""]
    lines += [
        f"{len(sources):,} sources ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items())) or 'none'}) "
        f"holding {len(repos):,} repositories.",
        "",
    ]
    rows = []
    for s in sources[:MAX_ROWS]:
        c = counted.get(s.get("label"), {})
        names = c.get("repo_names") or [s.get("repo_name", "")]
        shown = ", ".join(names[:3]) + (f" (+{len(names) - 3})" if len(names) > 3 else "")
        rows.append([s.get("label", ""), s.get("kind", ""), shown, _n(c.get("files_seen"))])
        rows[-1] += [_n(c.get("files_kept")), _n(c.get("bytes_kept"))]
    lines += _table(["source", "kind", "repositories", "files seen", "files kept", "bytes kept"], rows)
    if len(sources) > MAX_ROWS:
        lines += ["", f"... and {len(sources) - MAX_ROWS:,} more sources (all in `stats.json`)."]
    return lines + [""]


def parts_section(stats: dict[str, Any]) -> list[str]:
    """The other sources (recipe.md §6): records seen and kept per part, and why the rest went."""
    parts = {k: v for k, v in (stats.get("parts") or {}).items() if v["totals"]["files_seen"]}
    if not parts:
        return []
    rows = []
    for name, part in parts.items():
        t = part["totals"]
        removed: Counter[str] = Counter()
        for stage in part["stages"]:
            for reason, cell in stage["removed"].items():
                removed[f"{stage['stage']}: {reason}"] += cell["files"]
        top = ", ".join(f"{k} {_n(v)}" for k, v in removed.most_common(4)) or "-"
        rows.append([f"`{name}`", _n(t["files_seen"]), _n(t["files_kept"]), _n(t["bytes_kept"]), top])
    lines = ["## Other sources", ""]
    lines += [
        "Training texts besides source files (StarCoder2's other sources): each part is a folder of "
        "Parquet files with the text in `text`, deduplicated within itself; `removed/<part>/` holds "
        "every removed record with its stage and reason. The funnel per stage is in `stats.json` "
        "(`parts`).",
        "",
    ]
    lines += _table(["part", "records seen", "records kept", "bytes kept", "removed (top reasons)"], rows)
    return lines + [""]


MIX_TITLE = "## Training mix"


def _source_size(stats: dict[str, Any], name: str) -> tuple[int | None, int | None]:
    """Records and bytes of a source from the build's stats (documents: rows and their files' bytes)."""
    if name == "documents" and "documents" in stats:
        return stats["documents"].get("parts"), stats["documents"].get("bytes")
    part = (stats.get("parts") or {}).get(name)
    if part:
        return part["totals"]["files_kept"], part["totals"]["bytes_kept"]
    return None, None


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def mix_section(stats: dict[str, Any], tokens: dict[str, Any] | None = None) -> list[str]:
    """The training mix as the paper's Table 4 (recipe.md §6): per source its records, bytes and,
    once `stackcoder tokenize` has run (``tokens``: its ``tokens.json``), tokens, share of the
    training tokens, epochs or weight, probability per document and FIM."""
    lines = [MIX_TITLE, ""]
    header = ["source", "records", "bytes", "train tokens", "valid tokens", "share of train tokens"]
    header += ["epochs / weight", "epochs per pass", "P(next document)", "FIM"]
    rows = []
    if tokens and tokens.get("sources"):
        given = tokens.get("mix", "epochs")
        for src in tokens["sources"]:
            records, size = _source_size(stats, src["name"])
            docs = src["train"]["documents"] + src["valid"]["documents"]
            if given == "epochs":
                spec = f"{src['epochs']:g} epoch" + ("" if src["epochs"] == 1 else "s")
            else:
                spec = f"weight {src['weight']:g}"
            rows.append(
                [f"`{src['name']}`", _n(records if records is not None else docs), _n(size)]
                + [_n(src["train"]["tokens"]), _n(src["valid"]["tokens"]), _pct(src["token_share"])]
                + [spec, f"{src['epochs_per_pass']:.2f}", f"{src['probability']:.4f}", src["fim"]]
            )
        held_out = len(tokens.get("valid_repositories", []))
        tokenizer = tokens.get("tokenizer")
        lines += [
            f"The sources `stackcoder tokenize` made training tokens of (tokenizer `{tokenizer}`, "
            f"{held_out:,} held-out repositories in `valid`), as StarCoder2's Table 4 lists its "
            "sources. The trainer draws the source of each next document with the probability "
            "shown, so each source's expected share of the training tokens is the share column; "
            "*epochs per pass* is how often each source has been seen once training has consumed "
            "as many tokens as the train column sums to (scale it by the run's tokens). "
            "`tokens.json` beside the shards has the same figures.",
            "",
        ]
    else:
        names = ["documents"] + [
            n for n, p in (stats.get("parts") or {}).items() if p["totals"]["files_kept"]
        ]
        for name in names:
            records, size = _source_size(stats, name)
            rows.append([f"`{name}`", _n(records), _n(size)] + ["-"] * (len(header) - 3))
        lines += [
            "The sources a training run can draw from (StarCoder2's Table 4 lists its own). Token "
            "counts and the mix appear here once `stackcoder tokenize DIR --tokenizer TOK` has run "
            "(docs/training.md: `--epochs`, `--weight`, `--fim` per source).",
            "",
        ]
    return lines + _table(header, rows) + [""]


def update_card_mix(dataset: Path, tokens: dict[str, Any]) -> bool:
    """Rewrite the mix section of ``dataset``'s card from a tokenization's ``tokens.json``; False when
    ``dataset`` has no card (or no ``stats.json``) to update."""
    card, stats_file = DatasetLayout(dataset).card, DatasetLayout(dataset).stats
    if not card.is_file() or not stats_file.is_file():
        return False
    text = card.read_text(encoding="utf-8")
    section = "\n".join(mix_section(json.loads(stats_file.read_text()), tokens))
    start = text.find(MIX_TITLE + "\n")
    if start < 0:  # a card written before the section existed: put it where write_card does
        start = text.find("## Languages\n")
        start = start if start >= 0 else len(text)
        end = start
    else:
        nxt = text.find("\n## ", start + len(MIX_TITLE))
        end = nxt + 1 if nxt >= 0 else len(text)
    card.write_text(text[:start] + section + "\n" + text[end:], encoding="utf-8")
    return True


def _tokens_of(output_dir: Path) -> dict[str, Any] | None:
    """``DIR/tokens/tokens.json`` when it is a tokenization of this very dataset."""
    path = DatasetLayout(output_dir).tokens / TOKENS_JSON
    if not path.is_file():
        return None
    info = json.loads(path.read_text())
    return info if Path(info.get("dataset", "")).resolve() == output_dir.resolve() else None


def languages_section(stats: dict[str, Any]) -> list[str]:
    langs = sorted(stats.get("languages", {}).items(), key=lambda kv: (-kv[1]["bytes"], kv[0]))
    total = sum(v["bytes"] for _, v in langs) or 1
    rows = [[k, _n(v["files"]), _n(v["bytes"]), f"{100 * v['bytes'] / total:.1f}%"] for k, v in langs]
    lines = [
        "## Languages",
        "",
        f"{len(langs):,} languages among the kept files (go-enry's names), by bytes.",
        "",
    ]
    lines += _table(["language", "files", "bytes", "share of bytes"], rows)
    return lines + ["", f"![the language mix]({LANGUAGES_PNG})", ""]


def licenses_section(stats: dict[str, Any], recipe: dict[str, Any]) -> list[str]:
    classes = stats.get("license_types", {})
    kept = recipe.get("license", {}).get("keep_classes", [F.PERMISSIVE, F.NO_LICENSE])
    lines = ["## Licenses", ""]
    lines += [
        "This dataset has no single license (hence `license: other`): every file keeps the license of "
        "the directory it came from. `detected_licenses` lists the SPDX license expressions that apply "
        "to the file (all of them: an id, or a choice such as `MIT OR Apache-2.0`), found by ScanCode in "
        "the repository's license files or in a Debian `debian/copyright`, `license_type` their class: "
        "`permissive` (Blue Oak Council approved, or ScanCode's Permissive / Public Domain categories; a "
        "choice when one alternative is), `no_license` (nothing detected: the "
        "authors published the code without granting a license, and keep their rights) or "
        f"`non_permissive`. This build keeps {', '.join(f'`{c}`' for c in kept)}. Users must honour each "
        "file's license and attribution terms; detection is automatic and can be wrong.",
        "",
    ]
    return lines + _table(["license class", "files"], [[f"`{k}`", _n(v)] for k, v in classes.items()]) + [""]


def _pii_note(pii: dict[str, Any]) -> str:
    if not pii.get("enabled", False):
        return "Personal information was **not** redacted in this build (`[pii] enabled = false`)."
    names = "names as `<NAME>`, " if pii.get("name_model") else ""
    return (
        f"Personal information was redacted automatically ({names}emails as `<EMAIL>`, keys as `<KEY>`, "
        "passwords as `<PASSWORD>`, IP addresses replaced by random private ones); some will have been "
        "missed. Repositories whose owners opted out are left out of every file; the dataset should be "
        "rebuilt as such requests arrive."
    )


def _byte_unit(largest: float) -> tuple[float, str]:
    """The decimal unit that keeps the axis readable, from bytes to TB."""
    for scale, unit in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "KB")):
        if largest >= scale:
            return scale, unit
    return 1.0, "bytes"


def _plot_funnel(stats: dict[str, Any], path: Path) -> None:
    from matplotlib.figure import Figure  # heavy: only when a card is written; no pyplot, no display

    stages = stats.get("stages", [])
    names = [s["stage"] for s in stages][::-1]  # first stage on top
    fig = Figure(figsize=(11, 0.45 * len(stages) + 1.8), layout="constrained")
    byte_scale, byte_label = _byte_unit(max((s["bytes_in"] for s in stages), default=0))
    for ax, unit, scale, label in zip(
        fig.subplots(1, 2, sharey=True),
        ("files", "bytes"),
        (1, byte_scale),
        ("files", byte_label),
        strict=True,
    ):
        out = [s[f"{unit}_out"] / scale for s in stages][::-1]
        gone = [(s[f"{unit}_in"] - s[f"{unit}_out"]) / scale for s in stages][::-1]
        ax.barh(names, out, color="#3b75af", label="after the stage")
        ax.barh(names, gone, left=out, color="#e8a33d", label="removed by the stage")
        ax.set_xlabel(label)
        ax.set_title(f"{label} after each stage")
    fig.legend(*fig.axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2)
    fig.savefig(path, dpi=100)


def _plot_languages(stats: dict[str, Any], path: Path) -> None:
    from matplotlib.figure import Figure

    langs = sorted(stats.get("languages", {}).items(), key=lambda kv: (-kv[1]["bytes"], kv[0]))
    top, rest = langs[:TOP_LANGUAGES], langs[TOP_LANGUAGES:]
    names = [k for k, _ in top] + ([f"{len(rest)} others"] if rest else [])
    size = [v["bytes"] for _, v in top] + ([sum(v["bytes"] for _, v in rest)] if rest else [])
    scale, unit = _byte_unit(max(size, default=0))
    files = [v["files"] for _, v in top] + ([sum(v["files"] for _, v in rest)] if rest else [])
    fig = Figure(figsize=(8, 0.35 * len(names) + 1.5), layout="constrained")
    ax = fig.subplots()
    bars = ax.barh(names[::-1], [b / scale for b in size[::-1]], color="#3b75af")
    labels = [f"{n:,} file" + ("s" if n != 1 else "") for n in files[::-1]]
    ax.bar_label(bars, labels=labels, padding=3, fontsize="small")
    ax.set_xlabel(f"{unit} kept")
    ax.set_title("Language mix of the kept files" if names else "No files kept")
    ax.margins(x=0.2)
    fig.savefig(path, dpi=100)


def write_card(
    output_dir: Path, stats: dict, recipe: dict, sources: list[dict], extra: dict | None = None
) -> Path:
    """Write ``README.md``, ``funnel.png`` and ``languages.png`` into ``output_dir``; returns the card.

    ``stats`` has ``report.summarize``'s shape; ``sources`` are the build's sources as dicts
    (``dataclasses.asdict(Source)``); ``extra`` holds part-2 reports by stage name (``dedup``,
    ``pii``, ...), which win over the same keys in ``stats``.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    meta = front_matter(stats, recipe)
    totals = stats.get("totals", {})
    reports = {k: stats[k] for k in SECTIONS if k in stats} | (extra or {})
    if "opt_out" not in reports and "files_opted_out" in totals:
        reports["opt_out"] = {"files_removed": totals["files_opted_out"]}
    name = recipe.get("name", "the-stack-v2")
    p_meta = recipe.get("documents", {}).get("metadata_probability", 0.5)

    lines = ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).strip(), "---", ""]
    lines += [f"# {meta['pretty_name']}", ""]
    lines += [
        f"Source code from {len(sources):,} sources, labeled and filtered by stackcoder with the recipe "
        f"`{name}`: The Stack v2's, from the StarCoder2 report ([arXiv 2402.19173]({PAPER})). It holds "
        f"{_n(totals.get('files_kept'))} files ({_n(totals.get('bytes_kept'))} bytes) from "
        f"{_n(totals.get('repositories_kept'))} repositories, of {_n(totals.get('files_seen'))} files seen.",
        "",
        "- `files` (default): one row per file, with The Stack v2's columns (`blob_id`, `repo_name`, "
        "`path`, `content`, `language`, `detected_licenses`, `license_type`, ...).",
        "- `documents`: one row per repository (or part of a large one): its files in random order in "
        "StarCoder2's training format, `<repo_name>owner/name<file_sep>path\\ncode...<|endoftext|>` "
        f"(with that metadata with probability {p_meta}, else `<file_sep>code...`).",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        'files = load_dataset("path/to/this/folder", "files", split="train")',
        'documents = load_dataset("path/to/this/folder", "documents", split="train")',
        "```",
        "",
    ]
    lines += sources_section(stats, sources)
    lines += ["## Recipe", ""]
    lines += [
        f"`{name}`, as this build used it: The Stack v2's published values, except where an override "
        "changed them (stackcoder's `recipe.toml` gives the source of each default). Files removed by "
        "any stage are kept, with the stage and the reason, in `removed/` (not a config of this card).",
        "",
        "<details><summary>The recipe, as TOML</summary>",
        "",
        "```toml",
        recipe_toml(recipe).rstrip(),
        "```",
        "",
        "</details>",
        "",
    ]
    lines += funnel_section(stats)
    lines += parts_section(stats)
    lines += mix_section(stats, _tokens_of(output_dir))
    lines += languages_section(stats)
    lines += licenses_section(stats, recipe)
    for key, title in SECTIONS.items():
        if key in reports or key in ALWAYS:
            lines += _report(title, reports.get(key))
    for key in sorted(set(reports) - set(SECTIONS)):
        lines += _report(key.replace("_", " ").capitalize(), reports[key])

    lines += ["## Considerations", "", _pii_note(recipe.get("pii", {})), ""]
    _plot_funnel(stats, output_dir / FUNNEL_PNG)
    _plot_languages(stats, output_dir / LANGUAGES_PNG)
    card = output_dir / CARD
    card.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return card
