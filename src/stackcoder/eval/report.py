"""What an evaluation leaves: the JSON (every sample with its result; the scores by name at the top),
the printed summary table, a Markdown report, and the comparison of two runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stackcoder.errors import UserError


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def summary(result: dict[str, Any]) -> str:
    rows = [
        (name, f"{value:.4f}" if isinstance(value, float) else str(value))
        for name, value in result["scores"].items()
    ]
    text = f"{result['task']} — {result['model']}\n" + table(rows, ("score", "value"))
    per_language = result.get("per_language")
    if per_language:
        cols = sorted({k for v in per_language.values() for k in v})
        text += "\n\n" + table(
            [(k, *(str(v.get(c, "")) for c in cols)) for k, v in per_language.items()], ("language", *cols)
        )
    return text


def markdown(result: dict[str, Any]) -> str:
    lines = [f"# Evaluation: {result['task']}", "", f"- model: `{result['model']}`"]
    lines += [f"- {k}: `{v}`" for k, v in result.get("settings", {}).items()]
    if "sandbox" in result:
        lines.append(f"- sandbox: {', '.join(f'{k} {v}' for k, v in result['sandbox'].items())}")
    lines += [
        "",
        "## Scores",
        "",
        table([(k, str(v)) for k, v in result["scores"].items()], ("score", "value")),
    ]
    if result.get("per_language"):
        lines += ["", "## Per language", "", summary(result).split("\n\n", 1)[1]]
    failed = [s for s in result.get("samples", []) if s.get("passed") is False][:10]
    if failed:
        lines += ["", "## First failures", ""] + [f"- `{s['task_id']}`: {s['result']}" for s in failed]
    return "\n".join(lines) + "\n"


def load(path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not JSON ({e})") from None
    if "scores" not in data:
        raise UserError(f"{path}: not a `stackcoder eval --output` file (no scores)")
    return data


def compare(a: dict[str, Any], b: dict[str, Any]) -> str:
    names = list(dict.fromkeys([*a["scores"], *b["scores"]]))
    rows = []
    for n in names:
        x, y = a["scores"].get(n), b["scores"].get(n)
        delta = f"{y - x:+.4f}" if isinstance(x, int | float) and isinstance(y, int | float) else ""
        rows.append((n, "" if x is None else str(x), "" if y is None else str(y), delta))
    return table(rows, ("score", f"A ({a.get('model', '?')})", f"B ({b.get('model', '?')})", "B − A"))
