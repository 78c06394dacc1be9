"""Debian machine-readable copyright files (DEP-5): parsing, short names, and the license step.

The copyright files are the real ones of Debian bookworm packages (tests/fixtures/licenses/README.md);
the format examples are the DEP-5 specification's own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import make_file
from stackcoder.data import fields as F
from stackcoder.data.dep5 import glob_regex, is_dep5_path, package_root, parse_dep5

FIXTURES = Path(__file__).parents[1] / "fixtures" / "licenses"


def copyright_file(package: str) -> str:
    return (FIXTURES / f"{package}.copyright").read_text(encoding="utf-8")


def stanzas(text: str, scan=None) -> list[tuple[tuple[str, ...], str]]:
    dep5 = parse_dep5(text, scan)
    assert dep5 is not None
    return [(patterns, expression) for patterns, _, expression in dep5.stanzas]


def test_paths_and_package_root():
    from stackcoder.data.license_files import is_license_file

    assert is_license_file("debian/copyright")  # scanned first, like any license-like file
    assert is_dep5_path("debian/copyright") and is_dep5_path("pkg/debian/copyright")
    assert not is_dep5_path("COPYRIGHT") and not is_dep5_path("debian/copyright.txt")
    assert not is_dep5_path("src/copyright")
    assert package_root("debian/copyright") == "" and package_root("a/b/debian/copyright") == "a/b"


def test_real_copyright_files_short_names():
    # Debian short names and SPDX ids, no text needed
    assert stanzas(copyright_file("elpa-s")) == [
        (("*",), "GPL-3.0-or-later"),
        (("debian/*",), "GPL-3.0-or-later"),
    ]
    assert stanzas(copyright_file("librust-itoa-dev"))[0] == (("*",), "MIT OR Apache-2.0")
    assert stanzas(copyright_file("golang-github-hashicorp-go-multierror-dev"))[0] == (("*",), "MPL-2.0")
    # Expat is Debian's name for MIT; BSD-3-clause~Google is nobody's short name, and no scanner here
    uuid = stanzas(copyright_file("golang-github-google-uuid-dev"))
    assert uuid == [(("*",), "BSD-3-Clause"), (("debian/*",), "MIT")]  # ~Google variant: its base name


def test_unknown_short_names_are_read_from_their_text_with_scancode():
    pytest.importorskip("licensedcode", reason="scancode-toolkit is not installed")
    from stackcoder.data.license import scan_license_text

    seen: list[str] = []

    def scan(text: str) -> tuple[str, ...]:
        seen.append(text)
        return scan_license_text(text)

    uuid = stanzas(copyright_file("golang-github-google-uuid-dev"), scan)
    assert uuid[0] == (("*",), "BSD-3-Clause")
    assert len(seen) == 1 and seen[0].startswith("Redistribution and use in source and binary forms")
    juju = stanzas(copyright_file("golang-github-juju-errors-dev"), scan)
    assert "LGPL-3.0-only" in juju[0][1] and "LGPL-3.0-linking-exception" in juju[0][1]


def test_free_form_copyright_is_not_dep5():
    assert parse_dep5(copyright_file("libmpfr6")) is None  # libmpfr6 4.2.0-1: prose, no Files: paragraphs


SPEC_EXAMPLE = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: SOFTware
Upstream-Contact: John Doe <john.doe@example.com>
Source: http://www.example.com/software/project

Files: *
Copyright: 1975-2010 Ulla Upstream
License: GPL-2+

Files: debian/*
Copyright: 2010 Daniela Debianizer
License: GPL-2+

Files: debian/patches/fancy-feature
Copyright: 2010 Daniela Debianizer
License: GPL-3+

Files: */*.1
Copyright: 2010 Manuela Manpager
License: GPL-2+ or Artistic-2.0, and BSD-3-clause

Files: src/lib/bundled.c src/lib/ver?.h
Copyright: 2008 Some Author
License: Expat or Perl

License: GPL-2+
 This program is free software; you can redistribute it
 and/or modify it under the terms of the GNU General Public
 License as published by the Free Software Foundation; either
 version 2 of the License, or (at your option) any later
 version.
"""


def test_spec_example_last_matching_paragraph_wins():
    dep5 = parse_dep5(SPEC_EXAMPLE)
    assert dep5.license_for("src/main.c") == "GPL-2.0-or-later"
    assert dep5.license_for("debian/rules") == "GPL-2.0-or-later"
    assert dep5.license_for("debian/patches/fancy-feature") == "GPL-3.0-or-later"
    # `*` matches `/` too; a comma before `and` closes the group: (A or B) and C
    assert dep5.license_for("man/sub/tool.1") == "(GPL-2.0-or-later OR Artistic-2.0) AND BSD-3-Clause"
    assert dep5.license_for("src/lib/bundled.c") == "MIT OR (Artistic-1.0-Perl OR GPL-1.0-or-later)"
    assert dep5.license_for("src/lib/ver1.h") == dep5.license_for("src/lib/bundled.c")  # `?`
    assert dep5.license_for("src/lib/ver10.h") == "GPL-2.0-or-later"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("GPL-2+ with OpenSSL exception", "GPL-2.0-or-later WITH LicenseRef-scancode-generic-exception"),
        ("GPL-2+ with Font exception", "GPL-2.0-or-later WITH Font-exception-2.0"),
        ("Apache-2.0 with LLVM exception or MIT", "Apache-2.0 WITH LLVM-exception OR MIT"),
        ("GPL-2+ or Artistic-2.0 and BSD-3-clause", "GPL-2.0-or-later OR Artistic-2.0 AND BSD-3-Clause"),
        ("public-domain", "LicenseRef-scancode-public-domain"),
        ("LGPL-2.1+", "LGPL-2.1-or-later"),
        ("no-such-license", "LicenseRef-scancode-unknown-license-reference"),
    ],
)
def test_license_lines(line, expected):
    assert parse_dep5(f"Files: *\nCopyright: 2020 A\nLicense: {line}\n").license_for("x.c") == expected


def test_glob_escapes():
    assert glob_regex(r"a\*b").match("a*b") and not glob_regex(r"a\*b").match("axxb")
    assert glob_regex("./src/*").match("src/x/y.go")
    assert not glob_regex("src/*.go").match("lib/x.go")


# --- the license step


@pytest.fixture(scope="module")
def detect():
    pytest.importorskip("licensedcode", reason="scancode-toolkit is not installed")
    from stackcoder.data.license import LicenseDetector

    def run(docs, **kwargs):
        step = LicenseDetector(**kwargs)
        out = {d.metadata[F.PATH]: d for d in step.run(iter(docs))}
        got = {
            p: (d.metadata[F.LICENSE_TYPE], tuple(d.metadata[F.DETECTED_LICENSES])) for p, d in out.items()
        }
        return got, step

    return run


@pytest.mark.parametrize(
    ("package", "path", "expected"),
    [
        ("golang-github-hashicorp-go-multierror-dev", "multierror.go", (F.NON_PERMISSIVE, ("MPL-2.0",))),
        ("golang-github-google-uuid-dev", "uuid.go", (F.PERMISSIVE, ("BSD-3-Clause",))),
        ("librust-itoa-dev", "src/lib.rs", (F.PERMISSIVE, ("Apache-2.0 OR MIT",))),
        ("elpa-s", "s.el", (F.NON_PERMISSIVE, ("GPL-3.0-or-later",))),
    ],
)
def test_debian_package_code_gets_the_copyright_files_license(detect, package, path, expected):
    got, step = detect([make_file(copyright_file(package), "debian/copyright"), make_file("x\n", path)])
    assert got[path] == expected
    assert step.stats["dep5_files"].total == 1 and step.stats["dep5_license"].total == 2
    assert "scanned_files" not in step.stats.stats  # the DEP-5 file is not scanned as one license


def test_debian_paragraphs_apply_per_file(detect):
    # uuid's packaging (debian/*) is Expat while the code is BSD-3-clause
    got, _ = detect(
        [
            make_file(copyright_file("golang-github-google-uuid-dev"), "debian/copyright"),
            make_file("x\n", "uuid.go"),
            make_file("x\n", "debian/watch"),
        ]
    )
    assert got["uuid.go"] == (F.PERMISSIVE, ("BSD-3-Clause",))
    assert got["debian/watch"] == (F.PERMISSIVE, ("MIT",))


def test_nested_package_root_and_license_files_beside_it(detect):
    # the DEP-5 file of a package in a subfolder covers that subfolder only; the root's LICENSE
    # (node-forge's BSD-or-GPL choice) still applies to everything below it (AND)
    got, _ = detect(
        [
            make_file(
                copyright_file("golang-github-hashicorp-go-multierror-dev"), "third_party/m/debian/copyright"
            ),
            make_file(Path(FIXTURES / "node-forge-1.3.1.LICENSE").read_text(encoding="utf-8"), "LICENSE"),
            make_file("x\n", "third_party/m/append.go"),
            make_file("x\n", "main.go"),
        ]
    )
    assert got["main.go"] == (F.PERMISSIVE, ("BSD-3-Clause OR GPL-2.0-only",))
    assert got["third_party/m/append.go"] == (F.NON_PERMISSIVE, ("BSD-3-Clause OR GPL-2.0-only", "MPL-2.0"))


def test_switched_off_or_free_form_the_recipe_rule_applies(detect):
    docs = [make_file(copyright_file("elpa-s"), "debian/copyright"), make_file("x\n", "s.el")]
    got, step = detect(docs, dep5=False)
    assert got["s.el"] == (F.NO_LICENSE, ())  # the file licenses debian/ only, as the recipe says
    assert got["debian/copyright"][0] == F.NON_PERMISSIVE
    assert "dep5_files" not in step.stats.stats

    got, step = detect(
        [make_file(copyright_file("libmpfr6"), "debian/copyright"), make_file("x\n", "mpfr.c")]
    )
    assert got["mpfr.c"] == (F.NO_LICENSE, ())
    assert got["debian/copyright"][0] == F.NON_PERMISSIVE  # LGPL-3+, found by ScanCode
    assert step.stats["dep5_free_form"].total == 1
