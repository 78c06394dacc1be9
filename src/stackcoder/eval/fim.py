"""Fill-in-the-middle exact match on held-out repositories, single-line and multi-line, per language,
with and without repository context — StarCoder2's claim that the other files of a repository help
is what the two modes measure (the same masked spans, the same model, only the prompt differs):

    no context:    <fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>
    repo context:  <repo_name>{repo}<file_sep>{other}\\n{text}…
                   <file_sep><fim_prefix>{path}\\n{prefix}<fim_suffix>{suffix}<fim_middle>

Spans are drawn with a seeded generator per file: one non-blank line (single), or 2–5 consecutive
lines (multi). A single-line answer is the first generated line; both compare with trailing
whitespace stripped per line (SantaCoder's FIM exact match).
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from stackcoder.eval.backends import Backend, Sampling
from stackcoder.eval.heldout import heldout_files
from stackcoder.tokenizer.prompts import fim_text
from stackcoder.tokenizer.special_tokens import FILE_SEP, REPO_NAME

MODES = ("single", "multi")
CONTEXTS = ("no_context", "repo_context")


@dataclass
class Example:
    repo: str
    path: str
    language: str
    mode: str
    prefix: str
    middle: str
    suffix: str
    others: list[tuple[str, str]]


def _span(lines: list[str], mode: str, rng: random.Random) -> tuple[int, int] | None:
    candidates = [i for i, line in enumerate(lines) if line.strip()]
    if mode == "single":
        return (i := rng.choice(candidates), i + 1) if candidates else None
    size = rng.randint(2, 5)
    starts = [i for i in candidates if i + size <= len(lines)]
    return (i := rng.choice(starts), i + size) if starts else None


def examples(
    dataset: str, per_mode: int, seed: int = 0, prefix_chars: int = 2000, suffix_chars: int = 1000
) -> list[Example]:
    repos = heldout_files(dataset)
    out: list[Example] = []
    for mode in MODES:
        pool = [
            (repo, f)
            for repo, files in repos.items()
            for f in files
            if f["content"].count("\n") >= 3 and len(f["content"]) < 100_000
        ]
        random.Random(f"{seed}/{mode}").shuffle(pool)
        for repo, f in pool[:per_mode]:
            rng = random.Random(f"{seed}/{mode}/{repo}/{f['path']}")
            lines = f["content"].split("\n")
            span = _span(lines, mode, rng)
            if span is None:
                continue
            a, b = span
            prefix = "\n".join(lines[:a]) + ("\n" if a else "")
            middle = "\n".join(lines[a:b])
            suffix = "\n" + "\n".join(lines[b:]) if b < len(lines) else ""
            others = [(g["path"], g["content"]) for g in repos[repo] if g["path"] != f["path"]]
            random.Random(f"{seed}/{repo}/{f['path']}/others").shuffle(others)
            out.append(
                Example(
                    repo,
                    f["path"],
                    f["language"] or "?",
                    mode,
                    prefix[-prefix_chars:],
                    middle,
                    suffix[:suffix_chars],
                    others,
                )
            )
    return out


def prompt(e: Example, context: str, budget_chars: int) -> str:
    if context == "no_context":
        return fim_text(e.prefix, e.suffix)
    parts, used = [], 0
    for path, text in e.others:  # as many whole files as the budget holds, in a seeded order
        if used + len(text) + len(path) > budget_chars:
            continue
        parts.append(f"{FILE_SEP}{path}\n{text}")
        used += len(text) + len(path)
    return REPO_NAME + e.repo + "".join(parts) + FILE_SEP + fim_text(e.prefix, e.suffix, e.path)


def _norm(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").split("\n"))


def answer(e: Example, generated: str) -> str:
    return generated.split("\n", 1)[0] if e.mode == "single" else generated


def run(
    dataset: str, backend: Backend, per_mode: int = 100, seed: int = 0, context_chars: int = 4000
) -> dict[str, Any]:
    if getattr(backend, "context", None):  # about two characters per token of code: stay inside the context
        context_chars = min(context_chars, backend.context * 2)
    exs = examples(dataset, per_mode, seed)
    if not exs:
        from stackcoder.errors import UserError

        raise UserError(f"{dataset}: the held-out repositories have no file with 3 or more lines")
    records, hits = [], defaultdict(lambda: [0, 0])
    for context in CONTEXTS:
        for mode in MODES:
            batch = [e for e in exs if e.mode == mode]
            if not batch:
                continue
            s = Sampling(
                max_new_tokens=48 if mode == "single" else 128,
                temperature=0.0,
                stop=["\n"] if mode == "single" else [],
            )
            outs = backend.complete([prompt(e, context, context_chars) for e in batch], s)
            for e, out in zip(batch, outs, strict=True):
                ok = _norm(answer(e, out)) == _norm(e.middle)
                for key in (f"{mode}/{context}", f"{mode}/{context}/{e.language}"):
                    hits[key][0] += 1
                    hits[key][1] += ok
                records.append(
                    {
                        "repo": e.repo,
                        "path": e.path,
                        "language": e.language,
                        "mode": mode,
                        "context": context,
                        "middle": e.middle,
                        "generated": out,
                        "exact_match": ok,
                    }
                )
    scores = {f"exact_match@{k}": round(c / n, 4) for k, (n, c) in sorted(hits.items()) if k.count("/") == 1}
    for mode in MODES:
        a, b = scores.get(f"exact_match@{mode}/repo_context"), scores.get(f"exact_match@{mode}/no_context")
        if a is not None and b is not None:
            scores[f"repo_context_gain@{mode}"] = round(a - b, 4)
    per_language = {
        k: {"n": n, "exact_match": round(c / n, 4)} for k, (n, c) in sorted(hits.items()) if k.count("/") == 2
    }
    return {"scores": scores, "per_language": per_language, "samples": records, "examples": len(exs)}
