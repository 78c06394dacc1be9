"""License detection and the license filter of The Stack v2 (recipe.md §1.2).

Per repository: the host license (GitHub metadata, ``gha_license_id``) when known applies to every
file and nothing is scanned, as The Stack v2 did; otherwise ScanCode scans the license-like files
(``license_files.is_license_file``) and each SPDX id it finds applies to every file under that license
file's directory. The class follows from the ids by the recipe's rule, with the roles pinned in
``licenses/permissive.json`` (regenerate with ``scripts/make_permissive_list.py``): amendments (CLAs,
DCO, patent grants, trademark/warranty notices) are ignored, ScanCode's unknown keys are dropped next
to a permissive license, then ``permissive`` if every id left is permissive, ``non_permissive`` if
any is not, ``no_license`` if none is left. See docs/license.md.
"""

from __future__ import annotations

import functools
import json
import posixpath
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from datatrove.data import Document, DocumentsPipeline
from datatrove.utils.logging import logger

from stackcoder.data import fields as F
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


def classify(ids: Iterable[str]) -> tuple[list[str], str]:
    """The ids that count (sorted) and the class of a file under licenses ``ids`` (recipe.md §1.2)."""
    roles = license_roles()
    kept = {i for i in ids if roles.get(i.lower()) != "amendments"}
    if any(roles.get(i.lower()) == "permissive" for i in kept):
        kept = {i for i in kept if roles.get(i.lower()) != "unknown"}
    if not kept:
        return [], F.NO_LICENSE
    permissive = all(roles.get(i.lower()) == "permissive" for i in kept)
    return sorted(kept), F.PERMISSIVE if permissive else F.NON_PERMISSIVE


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
    """SPDX ids of the licenses ScanCode detects in ``text``, matched in memory (no temporary file).

    ``timeout`` (seconds, ScanCode's CLI default) bounds one text: matching stops and keeps what it
    found. ``approximate=False`` keeps ScanCode's whole-text hash and exact rule matching and skips
    its sequence alignment, which finds edited license texts and costs ~95% of the time.
    """
    from licensedcode.detection import detect_licenses

    index, licensing, spdx = _scancode()
    found: set[str] = set()
    detections = detect_licenses(
        index=index,
        query_string=text,
        min_score=min_score,
        deadline=time.time() + timeout,
        approximate=approximate,
    )
    for detection in detections:
        if detection.license_expression:  # None: a clue, not a detection
            for key in licensing.license_keys(detection.license_expression):
                found.add(spdx.get(key, f"LicenseRef-scancode-{key}"))
    return tuple(sorted(found))


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


@dataclass
class _Repo:
    name: str | None
    host: str | None = None
    dirs: dict[str, set[str]] = field(default_factory=dict)  # directory -> ids found in its license files
    pending: list[Document] = field(default_factory=list)  # license files seen before any other file
    streaming: bool = False  # a non-license file was emitted: later license files are late

    def licenses_for(self, path: str) -> set[str]:
        """Ids of the license files in the file's directory and every ancestor directory."""
        ids = set(self.dirs.get("", ()))
        parts = posixpath.dirname(path.lstrip("/")).split("/")
        for depth in range(1, len(parts) + 1):
            ids |= self.dirs.get("/".join(parts[:depth]), set())
        return ids


class LicenseDetector(FileStep):
    """Label every file with ``detected_licenses`` and ``license_type``; removes nothing.

    Input: each repository's files contiguous, license-like files first (the reader's order). Only the
    current repository's license files are buffered. Removed license files are scanned too (a LICENSE
    removed by an earlier filter still licenses its directory) but never relabeled. A file that
    arrives with a ``license_type`` (a re-processed The Stack v2 record) keeps its labels and is not
    scanned.
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
        with self.track_time():
            ids = self._scan_text(doc.text, is_readme(doc.metadata[F.PATH]))
        self.stat_update("scanned_files")
        for spdx in ids:
            self.stat_update(f"scanned_{spdx}")
        repo.dirs.setdefault(posixpath.dirname(doc.metadata[F.PATH].lstrip("/")), set()).update(ids)

    def _scan_text(self, text: str, readme: bool) -> tuple[str, ...]:
        if readme:
            if self.readme_context_lines >= 0:
                text = license_passages(text, self.readme_context_lines)
            return _cached_scan(text, self.min_score, self.timeout, self.readme_approximate)
        # exact matching settles nearly every license file; alignment only when it finds no license
        ids = _cached_scan(text, self.min_score, self.timeout, False)
        if all(license_roles().get(i.lower()) in ("unknown", "amendments") for i in ids):
            self.stat_update("approximate_scans")
            ids = _cached_scan(text, self.min_score, self.timeout, True)
        return ids

    def _label(self, repo: _Repo, doc: Document) -> Document:
        if is_removed(doc):
            return doc
        if doc.metadata.get(F.LICENSE_TYPE) is not None:
            self.stat_update("kept_existing_labels")
        else:
            ids = {repo.host} if repo.host else repo.licenses_for(doc.metadata.get(F.PATH, ""))
            self.stat_update("host_license" if repo.host else "scancode_license")
            doc.metadata[F.DETECTED_LICENSES], doc.metadata[F.LICENSE_TYPE] = classify(ids)
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
