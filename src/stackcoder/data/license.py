"""License detection and the license filter of The Stack v2 (recipe.md §1.2).

Per repository: the host license (GitHub metadata, ``gha_license_id``) when known applies to every
file and nothing is scanned, as The Stack v2 did; otherwise ScanCode scans the license-like files
(``license_files.is_license_file``) and each license expression it detects applies to every file
under that license file's directory. Ours, not in the recipe (docs/license.md): a license choice
(``MIT OR GPL-2.0-only``) is kept as an expression and judged as a choice, and a Debian
``debian/copyright`` in the machine-readable format (``dep5.py``) applies each of its paragraphs to
the files it names. The class follows from the expressions by the recipe's rule, with the roles
pinned in ``licenses/permissive.json`` (regenerate with ``scripts/make_permissive_list.py``):
amendments (CLAs, DCO, patent grants, trademark/warranty notices) are ignored, ScanCode's unknown
keys are dropped next to a permissive license, then every expression that applies must be
permissive (an ``OR`` needs one permissive alternative, ``WITH`` is judged by its license),
``no_license`` if none is left. See docs/license.md.
"""

from __future__ import annotations

import functools
import json
import posixpath
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from datatrove.data import Document, DocumentsPipeline
from datatrove.utils.logging import logger
from license_expression import (
    AND,
    OR,
    ExpressionError,
    LicenseSymbol,
    LicenseWithExceptionSymbol,
    Licensing,
)

from stackcoder.data import fields as F
from stackcoder.data.dep5 import Dep5, is_dep5_path, package_root, parse_dep5
from stackcoder.data.license_files import is_license_file
from stackcoder.data.step import FileFilter, FileStep, is_removed
from stackcoder.errors import UserError

CLASSES_FILE = Path(__file__).parent / "licenses" / "permissive.json"
# GitHub's answers that name no license: fall back to ScanCode
_HOST_NO_ANSWER = frozenset({"", "noassertion", "other", "none"})


@functools.cache
def license_roles() -> dict[str, str]:
    """Lower-cased SPDX id -> ``permissive`` | ``amendments`` | ``unknown``; others are not listed."""
    data = json.loads(CLASSES_FILE.read_text(encoding="utf-8"))
    roles: dict[str, str] = {}
    for role in ("unknown", "amendments", "permissive"):  # last wins: permissive if a list overlaps
        roles.update((spdx.lower(), role) for spdx in data[role])
    return roles


# --- license expressions: SPDX ids joined by AND / OR / WITH, parsed by license-expression (the
# parser ScanCode itself uses). A plain Licensing: symbols are whatever ids the expressions name.
_LICENSING = Licensing()


@functools.lru_cache(maxsize=16384)
def parse_expression(expression: str):
    """The expression tree of ``expression``; a string the parser cannot read is one opaque license
    (characters a license key cannot hold become ``-``), which no list names: non_permissive."""
    try:
        return _LICENSING.parse(expression)
    except ExpressionError:
        return LicenseSymbol(re.sub(r"[^\w.:+ -]", "-", expression).strip(" -") or "invalid")


def _is_leaf(node) -> bool:
    return isinstance(node, LicenseSymbol | LicenseWithExceptionSymbol)


def _base(node) -> str:
    """The license of a leaf: ``A WITH E`` is judged by ``A`` (an exception only adds permissions)."""
    return node.license_symbol.key if isinstance(node, LicenseWithExceptionSymbol) else node.key


def _leaves(node) -> Iterator:
    if _is_leaf(node):
        yield node
    else:
        for arg in node.args:
            yield from _leaves(arg)


def _terms(node) -> list:
    """The top-level AND terms of ``node``: each applies on its own."""
    return [t for arg in node.args for t in _terms(arg)] if isinstance(node, AND) else [node]


def license_ids(expression: str) -> list[str]:
    """Every id an expression names, licenses and exceptions, in order (for stats and checks)."""
    ids = []
    for leaf in _leaves(parse_expression(expression)):
        if isinstance(leaf, LicenseWithExceptionSymbol):
            ids += [leaf.license_symbol.key, leaf.exception_symbol.key]
        else:
            ids.append(leaf.key)
    return ids


def _prune(node, drop: Callable[[str], bool]):
    """``node`` without the leaves whose license ``drop`` says to drop; None when nothing is left."""
    if _is_leaf(node):
        return None if drop(_base(node)) else node
    args = [a for a in (_prune(arg, drop) for arg in node.args) if a is not None]
    if not args:
        return None
    return args[0] if len(args) == 1 else type(node)(*args)


def _without(terms: list, drop: Callable[[str], bool]) -> list:
    """``terms`` pruned by ``drop``, split again at AND (``(A AND B) OR cla`` leaves two terms)."""
    return [t for term in terms if (pruned := _prune(term, drop)) is not None for t in _terms(pruned)]


def render(node, key: Callable[[str], str] = str) -> str:
    """SPDX text of ``node`` with ids mapped by ``key``; AND/OR operands sorted and deduplicated,
    so that ``MIT OR Apache-2.0`` and ``Apache-2.0 OR MIT`` are recorded the same way."""
    if isinstance(node, LicenseWithExceptionSymbol):
        return f"{key(node.license_symbol.key)} WITH {key(node.exception_symbol.key)}"
    if _is_leaf(node):
        return key(node.key)
    op = " AND " if isinstance(node, AND) else " OR "
    parts = {render(arg, key) if _is_leaf(arg) else f"({render(arg, key)})" for arg in _operands(node)}
    return op.join(sorted(parts))


def _operands(node) -> Iterator:
    """The operands of an AND/OR, with nested operations of the same kind spliced in."""
    for arg in node.args:
        if type(arg) is type(node):
            yield from _operands(arg)
        else:
            yield arg


def _permissive(node, roles: dict[str, str]) -> bool:
    if _is_leaf(node):
        return roles.get(_base(node).lower()) == "permissive"
    results = [_permissive(arg, roles) for arg in node.args]
    return any(results) if isinstance(node, OR) else all(results)


def offered_choices(expressions: Iterable[str]) -> list[str]:
    """The expressions of one directory's license files, with the texts of an offered choice's
    alternatives folded into the choice.

    A dual-licensed project ships the choice (``MIT OR GPL-2.0-only`` in a LICENSE or README) and
    the full text of each alternative, in the same file or beside it. ScanCode reports each text as
    a license of its own, and the AND of all of them would require GPL-2.0 after all. So a term
    that is a single license named as an alternative of a choice in the same directory is that
    alternative's text, not another license. Other terms stay: AND is strict.
    """
    terms = [t for e in expressions for t in _terms(parse_expression(e))]
    alternatives = {_base(leaf).lower() for t in terms if isinstance(t, OR) for leaf in _leaves(t)}
    kept = [t for t in terms if not (_is_leaf(t) and _base(t).lower() in alternatives)]
    return sorted({render(t) for t in kept})


@functools.lru_cache(maxsize=16384)
def _classify(expressions: tuple[str, ...]) -> tuple[tuple[str, ...], str]:
    roles = license_roles()
    terms = [t for e in expressions for t in _terms(parse_expression(e))]
    terms = _without(terms, lambda k: roles.get(k.lower()) == "amendments")
    if any(roles.get(_base(leaf).lower()) == "permissive" for t in terms for leaf in _leaves(t)):
        terms = _without(terms, lambda k: roles.get(k.lower()) == "unknown")
    if not terms:
        return (), F.NO_LICENSE
    permissive = all(_permissive(t, roles) for t in terms)
    return tuple(sorted({render(t) for t in terms})), F.PERMISSIVE if permissive else F.NON_PERMISSIVE


def classify(expressions: Iterable[str]) -> tuple[list[str], str]:
    """The license expressions that count (sorted) and the class of a file under ``expressions``,
    which all apply (AND) (recipe.md §1.2, with choices judged as choices).

    A plain SPDX id is an expression: ``classify(["MIT", "GPL-2.0-only"])`` is non_permissive as
    the recipe says. Amendments are removed wherever they stand; unknown references are removed
    when a permissive license is named anywhere; then every remaining top-level term must be
    permissive, where ``A OR B`` is permissive if one alternative is, ``A AND B`` if both are, and
    ``A WITH exception`` if ``A`` is. The terms are returned one per list item: the list means AND.
    """
    kept, license_class = _classify(tuple(sorted(set(expressions))))
    return list(kept), license_class


# ScanCode's index (~1.4 GB, seconds to load): once per worker process, on the first scan
_SCANCODE: tuple | None = None


def _scancode() -> tuple:
    global _SCANCODE
    if _SCANCODE is None:
        from licensedcode import cache

        start = time.perf_counter()
        lc = cache.get_cache()
        # deprecated keys have no SPDX id; ScanCode reports those as LicenseRef-scancode-<key> too
        spdx = {key: lic.spdx_license_key or f"LicenseRef-scancode-{key}" for key, lic in lc.db.items()}
        _SCANCODE = (lc.index, lc.licensing, spdx)
        logger.info(f"ScanCode license index loaded in {time.perf_counter() - start:.1f}s")
    return _SCANCODE


def scan_license_text(
    text: str, min_score: float = 0, timeout: float = 120, approximate: bool = True
) -> tuple[str, ...]:
    """The SPDX license expressions ScanCode detects in ``text`` (one per detection, sorted, no
    duplicates), matched in memory (no temporary file).

    ScanCode's ``license_expression`` of each detection keeps its structure (``bsd-new OR
    gpl-2.0``); its keys are written as SPDX ids, or ``LicenseRef-scancode-<key>`` when a key has none
    (ScanCode's own convention). ``timeout`` (seconds, ScanCode's CLI default) bounds one text:
    matching stops and keeps what it found. ``approximate=False`` keeps ScanCode's whole-text hash
    and exact rule matching and skips its sequence alignment, which finds edited license texts and
    costs ~95% of the time.
    """
    from licensedcode.detection import detect_licenses

    index, _, spdx = _scancode()
    found: set[str] = set()
    detections = detect_licenses(
        index=index,
        query_string=text,
        min_score=min_score,
        deadline=time.time() + timeout,
        approximate=approximate,
    )
    to_spdx = functools.partial(_spdx_key, spdx)
    for detection in detections:
        if detection.license_expression:  # None: a clue, not a detection
            found.add(render(parse_expression(detection.license_expression), to_spdx))
    return tuple(sorted(found))


def _spdx_key(spdx: dict[str, str], key: str) -> str:
    return spdx.get(key, f"LicenseRef-scancode-{key}")


# a line that may belong to a license statement; README files are scanned only around such lines
_LICENSE_WORDS = re.compile(
    r"licen[cs]|copyright|\(c\)|©|gpl|\bmit\b|apache|\bbsd\b|mozilla|\bmpl\b|public.domain|unlicense"
    r"|permission is hereby|redistribution|warrant|spdx|patent",
    re.IGNORECASE,
)


def license_passages(text: str, context_lines: int) -> str:
    """``text`` with every line blanked that is more than ``context_lines`` lines away from a line
    mentioning a license. Line numbers are kept, so ScanCode's matches stay where they were.

    Why: a README is mostly prose that ScanCode's approximate matching scans slowly (seconds per
    README), while a license statement in it always names itself. On the demo corpus this gives the
    same detections as the whole text, 5x faster (benchmarks/bench_license.py).
    """
    lines = text.splitlines(keepends=True)
    keep = [False] * len(lines)
    for i, line in enumerate(lines):
        if _LICENSE_WORDS.search(line):
            for j in range(max(0, i - context_lines), min(len(lines), i + context_lines + 1)):
                keep[j] = True
    return "".join(line if k else "\n" for line, k in zip(lines, keep, strict=True))


def is_readme(path: str) -> bool:
    return posixpath.basename(path).lower().startswith("readme")


# identical license texts recur across repositories (the Apache-2.0 and GPL texts verbatim)
_cached_scan = functools.lru_cache(maxsize=4096)(scan_license_text)


def host_license(doc: Document) -> str | None:
    value = doc.metadata.get(F.HOST_LICENSE)
    return None if value is None or str(value).strip().lower() in _HOST_NO_ANSWER else str(value).strip()


@functools.lru_cache(maxsize=4096)
def _directory_terms(expressions: frozenset[str]) -> tuple[str, ...]:
    return tuple(offered_choices(expressions))


@dataclass
class _Repo:
    name: str | None
    host: str | None = None
    dirs: dict[str, set[str]] = field(default_factory=dict)  # directory -> expressions of its license files
    dep5: dict[str, Dep5] = field(default_factory=dict)  # package root -> its debian/copyright (DEP-5)
    pending: list[Document] = field(default_factory=list)  # license files seen before any other file
    streaming: bool = False  # a non-license file was emitted: later license files are late

    def licenses_for(self, path: str) -> tuple[list[str], bool]:
        """The expressions that apply to the file at ``path``: those of the license files in its
        directory and every ancestor directory, and the matching paragraph of every DEP-5 file whose
        package holds it, taken with its package root's license files. Each directory's choices are
        folded (``offered_choices``). Also: whether a DEP-5 paragraph applied."""
        path = path.lstrip("/")
        parts = posixpath.dirname(path).split("/") if "/" in path else []
        found: list[str] = []
        by_dep5 = False
        for directory in ["", *("/".join(parts[:depth]) for depth in range(1, len(parts) + 1))]:
            expressions = set(self.dirs.get(directory, ()))
            if directory in self.dep5:
                relative = path[len(directory) + 1 :] if directory else path
                if expression := self.dep5[directory].license_for(relative):
                    expressions.add(expression)
                    by_dep5 = True
            if expressions:
                found += _directory_terms(frozenset(expressions))
        return found, by_dep5


class LicenseDetector(FileStep):
    """Label every file with ``detected_licenses`` and ``license_type``; removes nothing.

    Input: each repository's files contiguous, license-like files first (the reader's order). Only the
    current repository's license files are buffered. Removed license files are scanned too (a LICENSE
    removed by an earlier filter still licenses its directory) but never relabeled. A file that
    arrives with a ``license_type`` (a re-processed The Stack v2 record) keeps its labels and is not
    scanned. ``dep5`` (ours, default on): a machine-readable ``debian/copyright`` applies each of its
    ``Files:`` paragraphs to the files it names instead of licensing ``debian/`` as a whole.
    """

    name = "⚖️ License detection"
    stage = "license"
    _requires_dependencies = [("licensedcode", "scancode-toolkit")]

    def __init__(
        self,
        min_score: float = 0,
        readme_context_lines: int = 10,
        readme_approximate: bool = False,
        timeout: float = 120,
        dep5: bool = True,
    ):
        super().__init__()
        if not 0 <= min_score <= 100:
            raise UserError(
                f"[license] min_score must be between 0 and 100 (ScanCode's score), got {min_score}"
            )
        self.min_score = min_score
        self.readme_context_lines = readme_context_lines
        self.readme_approximate = readme_approximate
        self.timeout = timeout
        self.dep5 = dep5

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        repo = _Repo(None)
        for doc in data:
            name = doc.metadata.get(F.REPO_NAME)
            if name != repo.name:
                yield from self._flush(repo)
                repo = _Repo(name)
            if repo.host is None:
                repo.host = host_license(doc)
            if not is_license_file(doc.metadata.get(F.PATH, "")):
                yield from self._flush(repo)
                yield self._label(repo, doc)
            elif repo.streaming:  # input not ordered: label with what is known, later files see it
                self.stat_update("late_license_file")
                self._scan(repo, doc)
                yield self._label(repo, doc)
            else:
                repo.pending.append(doc)
        yield from self._flush(repo)

    def _flush(self, repo: _Repo) -> Iterator[Document]:
        for doc in repo.pending:
            self._scan(repo, doc)
        for doc in repo.pending:
            yield self._label(repo, doc)
        repo.pending = []
        repo.streaming = True

    def _scan(self, repo: _Repo, doc: Document) -> None:
        if repo.host or doc.metadata.get(F.LICENSE_TYPE) is not None or not doc.text.strip():
            return
        path = doc.metadata[F.PATH].lstrip("/")
        if self.dep5 and is_dep5_path(path):
            with self.track_time():
                dep5 = parse_dep5(doc.text, scan=lambda text: self._scan_text(text, readme=False))
            if dep5 is not None:
                self.stat_update("dep5_files")
                repo.dep5[package_root(path)] = dep5
                return
            self.stat_update("dep5_free_form")  # not machine-readable: a license file like any other
        with self.track_time():
            expressions = self._scan_text(doc.text, is_readme(path))
        self.stat_update("scanned_files")
        for spdx in sorted({i for e in expressions for i in license_ids(e)}):
            self.stat_update(f"scanned_{spdx}")
        if any(" OR " in e for e in expressions):
            self.stat_update("scanned_choices")
        repo.dirs.setdefault(posixpath.dirname(path), set()).update(expressions)

    def _scan_text(self, text: str, readme: bool) -> tuple[str, ...]:
        if readme:
            if self.readme_context_lines >= 0:
                text = license_passages(text, self.readme_context_lines)
            return _cached_scan(text, self.min_score, self.timeout, self.readme_approximate)
        # exact matching settles nearly every license file; alignment only when it finds no license
        found = _cached_scan(text, self.min_score, self.timeout, False)
        roles = license_roles()
        if all(roles.get(i.lower()) in ("unknown", "amendments") for e in found for i in license_ids(e)):
            self.stat_update("approximate_scans")
            found = _cached_scan(text, self.min_score, self.timeout, True)
        return found

    def _label(self, repo: _Repo, doc: Document) -> Document:
        if is_removed(doc):
            return doc
        if doc.metadata.get(F.LICENSE_TYPE) is not None:
            self.stat_update("kept_existing_labels")
        else:
            if repo.host:
                expressions, by_dep5 = [repo.host], False
            else:
                expressions, by_dep5 = repo.licenses_for(doc.metadata.get(F.PATH, ""))
            self.stat_update("host_license" if repo.host else "scancode_license")
            if by_dep5:
                self.stat_update("dep5_license")
            doc.metadata[F.DETECTED_LICENSES], doc.metadata[F.LICENSE_TYPE] = classify(expressions)
        self.stat_update(f"class_{doc.metadata[F.LICENSE_TYPE]}")
        self.account(doc, None)
        return doc


class LicenseFilter(FileFilter):
    """Remove files whose ``license_type`` is not kept; the reason is the class (``non_permissive``)."""

    name = "⚖️ License filter"
    stage = "license_filter"

    def __init__(self, keep_classes: Sequence[str] = (F.PERMISSIVE, F.NO_LICENSE)):
        super().__init__()
        if isinstance(keep_classes, str):
            raise UserError(
                f"[license] keep_classes must be a list of classes, got the string {keep_classes!r}"
            )
        unknown = sorted(set(keep_classes) - set(F.LICENSE_CLASSES))
        if unknown:
            raise UserError(
                f"[license] keep_classes: unknown class {', '.join(unknown)}; "
                f"choose from {', '.join(F.LICENSE_CLASSES)}"
            )
        self.keep_classes = frozenset(keep_classes)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        license_type = doc.metadata.get(F.LICENSE_TYPE)
        if license_type is None:
            raise ValueError(f"{doc.id}: no {F.LICENSE_TYPE}; LicenseDetector must run before LicenseFilter")
        return True if license_type in self.keep_classes else (False, license_type)
