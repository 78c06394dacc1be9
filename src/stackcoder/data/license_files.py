"""Which files of a repository are license-like, i.e. scanned by ScanCode (recipe.md §1.2).

The Stack v2 ran ScanCode on files whose names match `li[cs]en[cs]e`, `copying`, `copyright`,
`legal`, `notice`, `unlicense`, `*gpl*`, `bsd`, `mit`, `apache`, `readme`, ...; the full list is
not published. We match the name (not the directories), case-insensitively, and skip source-code
extensions: a `license.py` module or `submit_mit.go` is code that happens to match, and scanning
it would let a string in a program decide a directory's license. The reader yields license-like
files first within each repository, so the license step knows a directory's licenses before it
labels the files under it. Debian's ``debian/copyright`` matches (``copyright``); when it is in the
machine-readable format the license step applies it per ``Files:`` paragraph (``dep5.py``).
"""

from __future__ import annotations

import posixpath
import re

_NAME = re.compile(
    r"li[cs]en[cs]e|copying|copyright|legal|notice|unlicense|gpl|patents|readme"
    r"|(?:^|[^a-z])(?:bsd|mit|apache|mpl|isc)(?:[^a-z]|$)",
    re.IGNORECASE,
)

# extensions of programs and data, never license-like even when the name matches
_CODE_EXTENSIONS = frozenset(
    (
        "py pyi pyx pxd c h cc cpp cxx hpp hh hxx m mm go rs java kt kts scala groovy clj cljs js mjs cjs "
        "jsx ts tsx vue svelte rb php pl pm lua r jl swift cs fs fsx vb sh bash zsh fish ps1 bat cmd sql "
        "json yaml yml toml ini cfg xml css scss sass less erl ex exs hs ml mli elm dart nim zig v d "
        "ada adb ads f f90 f95 for asm s wasm wat proto thrift graphql gql tf lock mod sum gradle cmake "
        "mk make dockerfile png jpg jpeg gif svg ico pdf zip gz tar bz2 xz so dll exe class jar pyc o a"
    ).split()
)


def is_license_file(path: str) -> bool:
    """True when ScanCode should scan the file at ``path`` (repository-relative, POSIX)."""
    name = posixpath.basename(path)
    if not name or not _NAME.search(name):
        return False
    stem, dot, ext = name.rpartition(".")
    return not (dot and stem and ext.lower() in _CODE_EXTENSIONS)
