"""LicenseDetector / LicenseFilter on small repositories built from ScanCode's own license texts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import make_file
from stackcoder.data import fields as F
from stackcoder.data.license import CLASSES_FILE, LicenseDetector, LicenseFilter, classify, offered_choices
from stackcoder.data.step import mark_removed
from stackcoder.errors import UserError

licensedcode = pytest.importorskip("licensedcode", reason="scancode-toolkit is not installed")
LICENSES = Path(licensedcode.__file__).parent / "data" / "licenses"


def license_text(key: str) -> str:
    """The reference text of ScanCode license ``key`` (after the YAML front matter)."""
    return (LICENSES / f"{key}.LICENSE").read_text(encoding="utf-8").split("---", 2)[2].strip() + "\n"


def detect(docs, **kwargs):
    step = LicenseDetector(**kwargs)
    out = list(step.run(iter(docs)))
    return {(d.metadata[F.REPO_NAME], d.metadata[F.PATH]): d for d in out}, step


def labels(out, repo="owner/repo"):
    return {
        path: (d.metadata.get(F.LICENSE_TYPE), tuple(d.metadata.get(F.DETECTED_LICENSES) or ()))
        for (name, path), d in out.items()
        if name == repo
    }


MIT_COPYRIGHT = "Copyright (c) 2021 Jane Doe\n\n" + license_text("mit")


def test_mit_repository_is_permissive_everywhere():
    out, step = detect(
        [
            make_file(MIT_COPYRIGHT, "LICENSE"),
            make_file("print('hi')\n", "main.py"),
            make_file("int x;\n", "src/deep/nested/x.c"),
        ]
    )
    assert set(labels(out).values()) == {(F.PERMISSIVE, ("MIT",))}
    assert step.stats["scanned_files"].total == 1
    assert step.stats["scanned_MIT"].total == 1
    assert step.stats["class_permissive"].total == 3
    assert step.stats["total"].total == step.stats["forwarded"].total == 3


def test_gpl_in_a_subdirectory_taints_only_that_subtree():
    out, _ = detect(
        [
            make_file(MIT_COPYRIGHT, "LICENSE"),
            make_file(license_text("gpl-3.0"), "third_party/gnu/COPYING"),
            make_file("x = 1\n", "src/a.py"),
            make_file("int y;\n", "third_party/gnu/lib/y.c"),
            make_file("int z;\n", "third_party/other.c"),
        ]
    )
    got = labels(out)
    gpl = (F.NON_PERMISSIVE, ("GPL-3.0-only", "MIT"))
    assert got["third_party/gnu/lib/y.c"] == gpl
    assert got["third_party/gnu/COPYING"] == gpl
    assert got["src/a.py"] == got["third_party/other.c"] == got["LICENSE"] == (F.PERMISSIVE, ("MIT",))


def test_apache_license_with_notice_file():
    notice = (
        "Example Project\nCopyright 2020 The Example Authors\n\n"
        "This product includes software developed at\nThe Apache Software Foundation (http://www.apache.org/).\n"
    )
    out, step = detect(
        [
            make_file(license_text("apache-2.0"), "LICENSE.txt"),
            make_file(notice, "NOTICE"),
            make_file("package a\n", "pkg/a.go"),
        ]
    )
    assert set(labels(out).values()) == {(F.PERMISSIVE, ("Apache-2.0",))}
    assert step.stats["scanned_files"].total == 2


def test_repository_without_license_file_is_no_license():
    out, step = detect([make_file("fn main() {}\n", "src/main.rs"), make_file("[package]\n", "Cargo.toml")])
    assert set(labels(out).values()) == {(F.NO_LICENSE, ())}
    assert "scanned_files" not in step.stats.stats


def test_readme_license_sentence_is_detected():
    readme = "# tool\n\nA small tool.\n\n## License\n\nLicensed under the MIT license.\n"
    out, _ = detect([make_file(readme, "README.md"), make_file("x = 1\n", "tool.py")])
    assert labels(out)["tool.py"] == (F.PERMISSIVE, ("MIT",))


def test_cla_dco_and_patent_grant_are_ignored():
    out, step = detect([make_file(license_text("dco-1.1"), "LEGAL.md"), make_file("x = 1\n", "a.py")])
    assert labels(out)["a.py"] == (F.NO_LICENSE, ())
    assert step.stats["scanned_LicenseRef-scancode-dco-1.1"].total == 1  # detected, then ignored

    out, _ = detect(
        [
            make_file(license_text("bsd-new"), "LICENSE"),
            make_file(license_text("google-patent-license-golang"), "PATENTS"),
            make_file("package main\n", "main.go"),
        ]
    )
    assert labels(out)["main.go"] == (F.PERMISSIVE, ("BSD-3-Clause",))


def test_host_license_is_used_and_nothing_is_scanned():
    docs = [
        make_file(license_text("gpl-3.0"), "COPYING", gha_license_id="Apache-2.0"),
        make_file("x = 1\n", "a.py", gha_license_id="Apache-2.0"),
    ]
    out, step = detect(docs)
    assert set(labels(out).values()) == {(F.PERMISSIVE, ("Apache-2.0",))}
    assert "scanned_files" not in step.stats.stats
    assert step.stats["host_license"].total == 2

    # GitHub's "NOASSERTION" names no license: ScanCode decides
    docs = [
        make_file(license_text("gpl-3.0"), "COPYING", gha_license_id="NOASSERTION"),
        make_file("x\n", "a.py"),
    ]
    out, _ = detect(docs)
    assert labels(out)["a.py"] == (F.NON_PERMISSIVE, ("GPL-3.0-only",))


def test_existing_labels_are_kept():
    labelled = make_file("x = 1\n", "a.py", license_type=F.NON_PERMISSIVE, detected_licenses=["GPL-2.0-only"])
    out, step = detect([make_file(MIT_COPYRIGHT, "LICENSE"), labelled, make_file("y = 2\n", "b.py")])
    got = labels(out)
    assert got["a.py"] == (F.NON_PERMISSIVE, ("GPL-2.0-only",))
    assert got["b.py"] == (F.PERMISSIVE, ("MIT",))
    assert step.stats["kept_existing_labels"].total == 1


def test_unknown_license_reference_dropped_next_to_mit_only():
    see = "# lib\n\nSee LICENSE for details.\n"
    out, _ = detect(
        [make_file(MIT_COPYRIGHT, "LICENSE"), make_file(see, "README.md"), make_file("x\n", "lib.py")]
    )
    assert labels(out)["lib.py"] == (F.PERMISSIVE, ("MIT",))

    out, _ = detect([make_file(see, "README.md"), make_file("x\n", "lib.py")])
    assert labels(out)["lib.py"] == (F.NON_PERMISSIVE, ("LicenseRef-scancode-unknown-license-reference",))


def test_repositories_back_to_back_do_not_leak():
    out, _ = detect(
        [
            make_file(license_text("gpl-3.0"), "COPYING", repo_name="a/gpl"),
            make_file("x\n", "a.py", repo_name="a/gpl"),
            make_file("y\n", "b.py", repo_name="b/none"),
            make_file(MIT_COPYRIGHT, "LICENSE", repo_name="c/mit"),
            make_file("z\n", "c.py", repo_name="c/mit"),
        ]
    )
    assert labels(out, "a/gpl")["a.py"] == (F.NON_PERMISSIVE, ("GPL-3.0-only",))
    assert labels(out, "b/none")["b.py"] == (F.NO_LICENSE, ())
    assert labels(out, "c/mit")["c.py"] == (F.PERMISSIVE, ("MIT",))


def test_late_license_file_labels_what_follows():
    out, step = detect(
        [make_file("x\n", "early.py"), make_file(MIT_COPYRIGHT, "LICENSE"), make_file("y\n", "late.py")]
    )
    got = labels(out)
    assert got["early.py"] == (F.NO_LICENSE, ())  # already emitted: cannot be relabeled
    assert got["LICENSE"] == got["late.py"] == (F.PERMISSIVE, ("MIT",))
    assert step.stats["late_license_file"].total == 1


def test_removed_license_file_still_licenses_its_directory():
    removed = make_file(license_text("gpl-3.0"), "COPYING")
    mark_removed(removed, "language", "unknown_language")
    out, step = detect([removed, make_file("x\n", "a.py")])
    assert labels(out)["a.py"] == (F.NON_PERMISSIVE, ("GPL-3.0-only",))
    assert F.LICENSE_TYPE not in out[("owner/repo", "COPYING")].metadata  # passed through untouched
    assert step.stats["total"].total == 1


def test_scancode_loads_lazily_not_at_import_or_construction():
    code = (
        "import sys; from stackcoder.data.license import LicenseDetector; LicenseDetector(); "
        "print(sorted(m for m in sys.modules if m.startswith(('licensedcode', 'scancode'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_min_score_is_validated():
    with pytest.raises(UserError, match="min_score"):
        LicenseDetector(min_score=150)


def test_classify_rules():
    assert classify([]) == ([], F.NO_LICENSE)
    assert classify(["mit", "Apache-2.0"]) == (["Apache-2.0", "mit"], F.PERMISSIVE)  # SPDX ids: any case
    assert classify(["MIT", "GPL-2.0-only"]) == (["GPL-2.0-only", "MIT"], F.NON_PERMISSIVE)
    assert classify(["LicenseRef-scancode-proprietary-license"])[1] == F.NON_PERMISSIVE
    assert classify(["Artistic-2.0"])[1] == F.PERMISSIVE  # Blue Oak (Bronze) although ScanCode says copyleft
    assert classify(["LicenseRef-scancode-generic-cla", "LicenseRef-scancode-dco-1.1"]) == ([], F.NO_LICENSE)
    unknown = "LicenseRef-scancode-unknown-license-reference"
    assert classify([unknown, "MIT"]) == (["MIT"], F.PERMISSIVE)
    assert classify([unknown, "GPL-3.0-only"]) == (["GPL-3.0-only", unknown], F.NON_PERMISSIVE)


def test_classify_judges_a_choice_as_a_choice():
    # OR: one permissive alternative is enough; AND: all; the expression is kept, operands sorted
    assert classify(["BSD-3-Clause OR GPL-2.0-only"]) == (["BSD-3-Clause OR GPL-2.0-only"], F.PERMISSIVE)
    assert classify(["GPL-2.0-only OR LGPL-2.1-only"])[1] == F.NON_PERMISSIVE
    assert classify(["(MIT AND GPL-2.0-only) OR Apache-2.0"]) == (
        ["(GPL-2.0-only AND MIT) OR Apache-2.0"],
        F.PERMISSIVE,
    )
    assert classify(["(MIT AND GPL-2.0-only) OR LGPL-2.1-only"])[1] == F.NON_PERMISSIVE
    assert classify(["MIT AND BSD-2-Clause"]) == (["BSD-2-Clause", "MIT"], F.PERMISSIVE)  # AND: one per item
    # several expressions all apply: a choice next to a GPL-only license is still non_permissive
    assert classify(["MIT OR GPL-2.0-only", "GPL-3.0-only"])[1] == F.NON_PERMISSIVE
    assert classify(["MIT OR Apache-2.0", "Apache-2.0 OR MIT"]) == (["Apache-2.0 OR MIT"], F.PERMISSIVE)


def test_classify_exceptions_roles_and_unknowns_in_expressions():
    # WITH: the license decides (an exception only adds permissions), whatever ScanCode files it under
    assert classify(["Apache-2.0 WITH LLVM-exception"]) == (["Apache-2.0 WITH LLVM-exception"], F.PERMISSIVE)
    assert classify(["GPL-2.0-or-later WITH Classpath-exception-2.0"])[1] == F.NON_PERMISSIVE
    generic = "LicenseRef-scancode-generic-exception"  # an amendment on its own, kept inside WITH
    assert classify([f"MIT WITH {generic}"]) == ([f"MIT WITH {generic}"], F.PERMISSIVE)
    assert classify([generic]) == ([], F.NO_LICENSE)
    # amendments leave an expression wherever they stand
    assert classify(["MIT OR LicenseRef-scancode-generic-cla"]) == (["MIT"], F.PERMISSIVE)
    cla_choice = "(MIT AND GPL-2.0-only) OR LicenseRef-scancode-generic-cla"
    assert classify([cla_choice]) == (["GPL-2.0-only", "MIT"], F.NON_PERMISSIVE)  # AND again: one per item
    # unknown references: dropped inside a choice too when a permissive license is named
    unknown = "LicenseRef-scancode-unknown-license-reference"
    assert classify([f"GPL-2.0-only OR {unknown}", "MIT"]) == (["GPL-2.0-only", "MIT"], F.NON_PERMISSIVE)
    assert classify([f"GPL-2.0-only OR {unknown}"])[1] == F.NON_PERMISSIVE
    assert classify(["not a ( valid expression"])[1] == F.NON_PERMISSIVE  # kept as one unknown license


def test_offered_choice_folds_the_alternatives_texts():
    # what ScanCode reports for node-forge's LICENSE: the choice, then each alternative's full text
    scanned = ["(BSD-3-Clause OR GPL-2.0-only) AND BSD-3-Clause", "GPL-2.0-only"]
    assert offered_choices(scanned) == ["BSD-3-Clause OR GPL-2.0-only"]
    assert offered_choices(scanned + ["Zlib"]) == ["BSD-3-Clause OR GPL-2.0-only", "Zlib"]
    assert offered_choices(["MIT", "GPL-2.0-only"]) == ["GPL-2.0-only", "MIT"]  # no choice: AND stays


# real license texts (tests/fixtures/licenses/README.md says where each comes from)
LICENSE_FIXTURES = Path(__file__).parents[1] / "fixtures" / "licenses"


def fixture_text(name: str) -> str:
    return (LICENSE_FIXTURES / name).read_text(encoding="utf-8")


def test_dual_licensed_npm_package_is_permissive():
    """node-forge 1.3.1 declares (BSD-3-Clause OR GPL-2.0); its LICENSE states the choice, then
    gives the BSD and the whole GPL-2.0 text. The choice is kept whole in detected_licenses."""
    forge = fixture_text("node-forge-1.3.1.LICENSE")
    out, step = detect([make_file(forge, "LICENSE"), make_file("var forge = {};\n", "lib/forge.js")])
    assert set(labels(out).values()) == {(F.PERMISSIVE, ("BSD-3-Clause OR GPL-2.0-only",))}
    assert step.stats["scanned_choices"].total == 1
    assert step.stats["scanned_GPL-2.0-only"].total == 1

    # the GPL text beside the choice is the alternative's text; a GPL COPYING in a subfolder is not
    gpl = license_text("gpl-2.0")
    out, _ = detect(
        [
            make_file(forge, "LICENSE"),
            make_file(gpl, "COPYING"),
            make_file(gpl, "vendor/gnu/COPYING"),
            make_file("var forge = {};\n", "lib/forge.js"),
            make_file("int x;\n", "vendor/gnu/x.c"),
        ]
    )
    got = labels(out)
    assert got["lib/forge.js"] == (F.PERMISSIVE, ("BSD-3-Clause OR GPL-2.0-only",))
    assert got["vendor/gnu/x.c"] == (F.NON_PERMISSIVE, ("BSD-3-Clause OR GPL-2.0-only", "GPL-2.0-only"))


def test_choice_in_one_file_and_texts_beside_it():
    """packaging's LICENSE offers Apache-2.0 or BSD; LICENSE.APACHE and LICENSE.BSD hold the texts."""
    docs = [
        make_file(fixture_text(f"packaging-26.4.{name}"), name)
        for name in ("LICENSE", "LICENSE.APACHE", "LICENSE.BSD")
    ]
    out, _ = detect([*docs, make_file("x = 1\n", "src/packaging/version.py")])
    license_type, found = labels(out)["src/packaging/version.py"]
    assert license_type == F.PERMISSIVE
    assert "Apache-2.0 OR BSD-3-Clause" in found  # the choice, as ScanCode reads the LICENSE
    assert "Apache-2.0" not in found  # LICENSE.APACHE is an alternative's text, folded into the choice


def test_scan_license_text_keeps_scancode_expressions():
    from stackcoder.data.license import scan_license_text

    assert scan_license_text(fixture_text("node-forge-1.3.1.LICENSE"), approximate=False) == (
        "(BSD-3-Clause OR GPL-2.0-only) AND BSD-3-Clause",
        "GPL-2.0-only",
    )
    assert scan_license_text(MIT_COPYRIGHT) == ("MIT",)


def test_shipped_list_matches_installed_scancode():
    """Every ScanCode key is listed as permissive iff its category says so (a ScanCode upgrade that
    moves a key must regenerate the list with scripts/make_permissive_list.py)."""
    import yaml

    data = json.loads(CLASSES_FILE.read_text(encoding="utf-8"))
    assert "scancode-toolkit" in data["origin"]["scancode"] and "@blueoak/list" in data["origin"]["blueoak"]
    sources = {spdx.lower(): where for spdx, where in data["permissive"].items()}
    for path in LICENSES.glob("*.LICENSE"):
        meta = yaml.safe_load(path.read_text(encoding="utf-8").split("---", 2)[1])
        spdx = (meta.get("spdx_license_key") or f"LicenseRef-scancode-{meta['key']}").lower()
        listed = f"scancode:{meta['key']}/" in sources.get(spdx, "")
        expected = meta.get("category") in ("Permissive", "Public Domain") and not meta.get("is_unknown")
        assert listed == expected, meta["key"]


def test_license_filter_drops_non_permissive_with_reason():
    docs = [
        make_file("a\n", "a.py", license_type=F.PERMISSIVE),
        make_file("b\n", "b.py", license_type=F.NO_LICENSE),
        make_file("c\n", "c.py", license_type=F.NON_PERMISSIVE),
    ]
    step = LicenseFilter()
    out = {d.metadata[F.PATH]: d.metadata for d in step.run(iter(docs))}
    assert F.REMOVED_STAGE not in out["a.py"] and F.REMOVED_STAGE not in out["b.py"]
    assert (out["c.py"][F.REMOVED_STAGE], out["c.py"][F.REMOVED_REASON]) == (
        "license_filter",
        "non_permissive",
    )
    assert step.stats["dropped_non_permissive"].total == 1 and step.stats["forwarded"].total == 2

    only_permissive = LicenseFilter(keep_classes=[F.PERMISSIVE])
    docs = [make_file("b\n", "b.py", license_type=F.NO_LICENSE)]
    assert next(only_permissive.run(iter(docs))).metadata[F.REMOVED_REASON] == "no_license"


def test_license_filter_validates_its_input():
    with pytest.raises(UserError, match="copyleft"):
        LicenseFilter(keep_classes=["permissive", "copyleft"])
    with pytest.raises(UserError, match="list"):
        LicenseFilter(keep_classes="permissive")
    with pytest.raises(ValueError, match="LicenseDetector"):
        list(LicenseFilter().run(iter([make_file("x\n", "x.py")])))


def test_readme_is_scanned_only_around_license_lines():
    from stackcoder.data.license import license_passages

    before = "".join(f"Step {i}: configure the widget and run the build again.\n" for i in range(200))
    after = "".join(f"Note {i}: the widget may need a restart.\n" for i in range(200))
    readme = before + "## License\n\nThis project is licensed under the GPL-3.0 license.\n" + after
    window = license_passages(readme, 10)
    assert window.count("\n") == readme.count("\n")  # line numbers kept
    assert "licensed under the GPL-3.0" in window
    assert "Step 199:" in window and "Note 5:" in window  # context on both sides
    assert "Step 150:" not in window and "Note 50:" not in window
    out, _ = detect([make_file(readme, "README.md"), make_file("x = 1\n", "a.py")])
    whole, _ = detect([make_file(readme, "README.md"), make_file("x = 1\n", "a.py")], readme_context_lines=-1)
    assert labels(out) == labels(whole)
    assert labels(out)["a.py"][0] == F.NON_PERMISSIVE
