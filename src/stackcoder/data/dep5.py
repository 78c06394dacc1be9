"""Debian machine-readable copyright files (DEP-5): which license covers which file.

Ours, not in The Stack v2's rules (recipe.md §1.2 applies a license file to its own directory). A
Debian source package states its licenses in ``debian/copyright``; in the machine-readable format
(https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/) each ``Files:`` paragraph
lists glob patterns, relative to the package root (the folder that holds ``debian/``), and gives
their ``License:``. The recipe's rule would apply that file to ``debian/`` only, so the package's
code, which has no license file of its own in Debian's ``golang-*-dev``/``librust-*-dev``/``elpa-*``
packages, would be ``no_license``. Here each paragraph applies to the files it names.

Format details kept: paragraphs are separated by blank lines; ``*`` matches any characters, ``/``
included, ``?`` one character, ``\\`` escapes them; the last paragraph that matches a file wins.
The first line of a ``License:`` field is a short-name expression (``GPL-2+ or Artistic-1.0``,
``MIT or Apache-2.0``, ``LGPL-3 with linking exception``): ``and`` binds tighter than ``or``, a comma
before ``and``/``or`` ends a group (``A or B, and C`` is ``(A or B) and C``). Short names become SPDX
ids through ``licenses/debian.json`` (Debian names such as ``Expat``, ``GPL-2+``), then
license-expression's SPDX list (``BSD-3-clause``, ``MPL-2.0``), then ScanCode on the text the file
gives for that name (its standalone ``License:`` paragraph or the field's own text), which settles
names such as ``BSD-3-clause~Google``. A name with none of these is ScanCode's
``unknown-license-reference``.
"""

from __future__ import annotations

import functools
import json
import posixpath
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

TABLE_FILE = Path(__file__).parent / "licenses" / "debian.json"
UNKNOWN = "LicenseRef-scancode-unknown-license-reference"
GENERIC_EXCEPTION = "LicenseRef-scancode-generic-exception"

# ScanCode on a license text: SPDX expressions (license.scan_license_text behind a cache)
Scanner = Callable[[str], Sequence[str]]


def is_dep5_path(path: str) -> bool:
    """True for ``debian/copyright`` at any depth (where Debian source packages keep it)."""
    head, name = posixpath.split(path.lstrip("/"))
    return name == "copyright" and posixpath.basename(head) == "debian"


def package_root(path: str) -> str:
    """The folder the ``Files:`` patterns of the DEP-5 file at ``path`` are relative to ("" = root)."""
    return posixpath.dirname(posixpath.dirname(path.lstrip("/")))


@functools.cache
def _table() -> tuple[dict[str, str], dict[str, str]]:
    data = json.loads(TABLE_FILE.read_text(encoding="utf-8"))
    return data["licenses"], data["exceptions"]


@functools.cache
def _spdx_licensing():
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()  # SPDX's list as license-expression ships it (ids and aliases)


def spdx_id(name: str) -> str | None:
    """``name`` as a known SPDX id in its canonical spelling (aliases resolved), else None."""
    from license_expression import ExpressionError, LicenseSymbol

    licensing = _spdx_licensing()
    try:
        parsed = licensing.parse(name, validate=False)
    except ExpressionError:
        return None
    if type(parsed) is LicenseSymbol and parsed.key in licensing.known_symbols:
        return parsed.key
    return None


def _paragraphs(text: str) -> list[dict[str, str]]:
    """deb822 paragraphs: field name (lower-cased) -> value, continuation lines joined with newlines."""
    paragraphs: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    name = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                paragraphs.append(fields)
            fields, name = {}, None
        elif line.startswith("#"):
            continue
        elif line[0] in " \t":
            if name is not None:
                fields[name] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            name = key.strip().lower()
            fields[name] = value.strip()
    if fields:
        paragraphs.append(fields)
    return paragraphs


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A DEP-5 ``Files:`` pattern as a regex over the whole relative path."""
    out, i = [], 0
    pattern = pattern.removeprefix("./").lstrip("/")
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _license_text(value: str) -> str:
    """The text after a ``License:`` field's first line (the lines of `` .`` become blank lines)."""
    lines = value.split("\n")[1:]
    return "\n".join("" if line == "." else line for line in lines).strip()


def _wrap(expression: str) -> str:
    return f"({expression})" if " OR " in expression or " AND " in expression else expression


class _Resolver:
    """Short names of one file -> SPDX expressions, memoised per name."""

    def __init__(self, texts: dict[str, str], scan: Scanner | None):
        self.texts = texts  # lower-cased short name -> the license text the file gives for it
        self.scan = scan
        self.memo: dict[str, str] = {}

    def name(self, name: str) -> str:
        key = name.lower()
        if key not in self.memo:
            self.memo[key] = self._resolve(key, name)
        return self.memo[key]

    def _resolve(self, key: str, name: str) -> str:
        licenses, _ = _table()
        if key in licenses:
            return licenses[key]
        if found := spdx_id(name):
            return found
        text = self.texts.get(key)
        if text and self.scan is not None and (exprs := list(self.scan(text))):
            return exprs[0] if len(exprs) == 1 else " AND ".join(f"({e})" for e in exprs)
        if "~" in key:  # Debian's NAME~VARIANT spelling of a variant, with no text to read
            return self.name(name.split("~", 1)[0])
        return UNKNOWN

    def exception(self, words: list[str]) -> str:
        phrase = " ".join(words).lower().removesuffix(" exception").removesuffix("-exception").strip()
        _, exceptions = _table()
        return exceptions.get(phrase) or spdx_id(" ".join(words)) or GENERIC_EXCEPTION

    def group(self, text: str) -> str:
        """One comma-free group (``A or B and C with X exception``) as an SPDX expression."""
        out: list[str] = []
        words = text.split()
        i = 0
        while i < len(words):
            word = words[i]
            if word.lower() in ("and", "or"):
                out.append(word.upper())
                i += 1
                continue
            expr = self.name(word)
            i += 1
            if i < len(words) and words[i].lower() == "with":
                j = i + 1
                while j < len(words) and words[j].lower() not in ("and", "or"):
                    j += 1
                exception = self.exception(words[i + 1 : j])
                # an exception belongs to one license; a compound name (Perl) keeps its own terms
                expr = f"{expr} WITH {exception}" if " " not in expr else expr
                i = j
            out.append(expr)
        return out[0] if len(out) == 1 else " ".join(_wrap(e) for e in out)

    def expression(self, line: str) -> str | None:
        """A ``License:`` first line as an SPDX expression; None when it names nothing."""
        parts = re.split(r",\s*(?=(?:and|or)\b)", line.strip(), flags=re.IGNORECASE)
        expr = self.group(parts[0]) if parts[0].strip() else ""
        for part in parts[1:]:
            op, _, rest = part.partition(" ")
            rest_expr = self.group(rest)
            expr = (
                f"{_wrap(expr)} {op.upper()} {_wrap(rest_expr)}" if expr and rest_expr else expr or rest_expr
            )
        return expr or None


@dataclass(frozen=True)
class Dep5:
    """The ``Files:`` paragraphs of one DEP-5 file, in file order: (patterns, regexes, SPDX expression)."""

    stanzas: tuple[tuple[tuple[str, ...], tuple[re.Pattern[str], ...], str], ...]

    def license_for(self, relpath: str) -> str | None:
        """The expression of the last paragraph whose patterns match ``relpath`` (package-relative)."""
        for _, regexes, expression in reversed(self.stanzas):
            if any(r.match(relpath) for r in regexes):
                return expression
        return None

    def expressions(self) -> list[str]:
        return [expression for _, _, expression in self.stanzas]


def parse_dep5(text: str, scan: Scanner | None = None) -> Dep5 | None:
    """The DEP-5 file ``text``, or None when it has no ``Files:`` paragraph with a ``License:``
    (a free-form copyright file: the recipe's rule applies to it). ``scan`` resolves short names
    that are neither Debian's nor SPDX's from the license text the file gives for them."""
    paragraphs = _paragraphs(text)
    texts: dict[str, str] = {}
    for p in paragraphs:  # standalone License paragraphs, then Files paragraphs' own texts
        if "license" in p and "files" not in p:
            name = p["license"].split("\n", 1)[0].strip().lower()
            texts.setdefault(name, _license_text(p["license"]))
    for p in paragraphs:
        if "license" in p and "files" in p and (body := _license_text(p["license"])):
            texts.setdefault(p["license"].split("\n", 1)[0].strip().lower(), body)
    resolver = _Resolver(texts, scan)
    stanzas = []
    for p in paragraphs:
        if "files" not in p or "license" not in p:
            continue
        patterns = tuple(p["files"].split())
        expression = resolver.expression(p["license"].split("\n", 1)[0])
        if patterns and expression:
            stanzas.append((patterns, tuple(glob_regex(pat) for pat in patterns), expression))
    return Dep5(tuple(stanzas)) if stanzas else None
