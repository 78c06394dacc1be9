"""The demo corpus: manifest coverage, checksums, the cache, Debian extraction, the CLI.

Nothing here touches the network except the two ``slow`` tests at the end: one downloads two small
packages for real, one checks the manifest's expectations against ScanCode and go-enry on the corpus
already in the default cache.
"""

from __future__ import annotations

import io
import json
import lzma
import shutil
import socket
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from stackcoder.cli import main
from stackcoder.data import fields as F
from stackcoder.data.demo import download as D
from stackcoder.data.demo.debian import LAYOUT_VERSION, extract_source
from stackcoder.data.demo.manifest import (
    ECOSYSTEMS,
    MANIFEST,
    METADATA_FILE,
    Package,
    default_cache,
    load_manifest,
    select,
)
from stackcoder.errors import UserError

FIXTURES = Path(__file__).parents[2] / "fixtures" / "demo"
MS_TGZ = FIXTURES / "ms-2.1.3.tgz"  # npm pack ms@2.1.3
ISATTY_DEB = FIXTURES / "golang-github-mattn-go-isatty-dev_0.0.17-1_all.deb"  # apt-get download, bookworm
ISATTY_GO = {
    "doc.go",
    "example_test.go",
    "go.mod",
    "go.sum",
    "isatty_bsd.go",
    "isatty_others.go",
    "isatty_others_test.go",
    "isatty_plan9.go",
    "isatty_solaris.go",
    "isatty_tcgets.go",
    "isatty_windows.go",
    "isatty_windows_test.go",
}


@pytest.fixture(scope="module")
def manifest() -> list[Package]:
    return load_manifest()


def by_name(manifest: list[Package], name: str) -> Package:
    return next(p for p in manifest if p.name == name)


# --- the manifest


def test_manifest_is_valid_and_large_enough(manifest):
    assert len(manifest) >= 40
    assert len({p.name for p in manifest}) == len(manifest)
    assert len({p.repo_name for p in manifest}) == len(manifest)
    assert len({p.source for p in manifest}) == len(manifest)
    for p in manifest:
        assert p.expect_license_class in F.LICENSE_CLASSES
        assert p.source.startswith(p.repo_name.replace("/", "__") + "-" + p.version)
        if p.ecosystem == "debian":
            arch = p.arch or "all"
            # apt-get download names the file <name>_<version without epoch>_<arch>.deb
            assert p.file == f"{p.name}_{p.version.split(':')[-1]}_{arch}.deb", p.name
            assert p.name.startswith("elpa-") or (
                p.name.startswith(("golang-", "librust-")) and p.name.endswith("-dev")
            )
        if p.ecosystem == "npm":
            assert p.file.endswith(".tgz")


def test_manifest_covers_ecosystems_classes_and_copyleft_families(manifest):
    assert {p.ecosystem for p in manifest} == set(ECOSYSTEMS)
    assert {p.expect_license_class for p in manifest} == set(F.LICENSE_CLASSES)
    non_permissive = [p.license for p in manifest if p.expect_license_class == F.NON_PERMISSIVE]
    assert any(lic.startswith("GPL-") for lic in non_permissive)
    assert any(lic.startswith("LGPL-") for lic in non_permissive)
    assert any(lic.startswith("AGPL-") for lic in non_permissive)
    assert any(lic.startswith("MPL-") for lic in non_permissive)
    # no_license from packages that ship no license file; Debian packages carry debian/copyright
    assert {p.ecosystem for p in manifest if p.expect_license_class == F.NO_LICENSE} == {"pypi", "npm"}
    # copyleft code that only debian/copyright licenses (DEP-5), and a choice with a copyleft alternative
    debian = {p.name: p.expect_license_class for p in manifest if p.ecosystem == "debian"}
    assert debian["golang-github-hashicorp-go-multierror-dev"] == debian["elpa-s"] == F.NON_PERMISSIVE
    assert by_name(manifest, "jszip").expect_license_class == F.PERMISSIVE


def test_manifest_covers_languages_per_ecosystem(manifest):
    def langs(eco: str) -> set[str]:
        return {lang for p in manifest if p.ecosystem == eco for lang in p.languages}

    assert {"Python", "C", "C++", "Cython", "Rust"} <= langs("pypi")
    assert {"JavaScript", "TypeScript", "CSS"} <= langs("npm")
    assert {"Go", "Rust", "Emacs Lisp"} <= langs("debian")


def test_manifest_rejects_bad_entries(tmp_path):
    good = MANIFEST.read_text(encoding="utf-8").split("[[package]]")
    header, first, second = good[0], good[1], good[2]

    def load(text: str) -> list[Package]:
        path = tmp_path / "m.toml"
        path.write_text(text, encoding="utf-8")
        return load_manifest(path)

    assert len(load(header + "[[package]]" + first)) == 1
    with pytest.raises(UserError, match="share the name"):
        load(header + "[[package]]" + first + "[[package]]" + first)
    with pytest.raises(UserError, match="sha256 must be"):
        load("[[package]]" + first.replace('sha256 = "', 'sha256 = "zz'))
    with pytest.raises(UserError, match="expect_license_class"):
        load("[[package]]" + second.replace('"permissive"', '"maybe"'))
    with pytest.raises(UserError, match="unknown keys"):
        load("[[package]]" + first + 'homepage = "x"\n')
    with pytest.raises(UserError, match="ecosystem"):
        load("[[package]]" + first.replace('"pypi"', '"cargo"'))


def test_select_by_name_or_repo(manifest):
    assert [p.name for p in select(manifest, ["ms", "psf/requests"])] == ["requests", "ms"]
    assert select(manifest, None) == manifest
    with pytest.raises(UserError, match="not in the demo manifest: no-such-package"):
        select(manifest, ["ms", "no-such-package"])


# --- downloads: checksums and the cache (the clients are replaced by local copies)


def fake_client(monkeypatch, ecosystem: str, artifact: Path) -> list[str]:
    """Make ``ecosystem``'s client deliver ``artifact``; returns the list of packages it was asked for."""
    calls: list[str] = []

    def fetch(pkg: Package, into: Path) -> Path:
        calls.append(pkg.name)
        return Path(shutil.copy(artifact, into / pkg.file))

    monkeypatch.setitem(D.FETCHERS, ecosystem, fetch)
    return calls


def no_client(monkeypatch) -> None:
    def fail(pkg: Package, into: Path) -> Path:
        raise AssertionError(f"{pkg.name} was downloaded although it is cached")

    for eco in ECOSYSTEMS:
        monkeypatch.setitem(D.FETCHERS, eco, fail)


def test_checksum_mismatch_is_an_error_and_the_file_is_deleted(tmp_path, monkeypatch, manifest):
    fake = tmp_path / "ms-2.1.3.tgz"
    fake.write_bytes(MS_TGZ.read_bytes() + b"tampered")
    calls = fake_client(monkeypatch, "npm", fake)
    cache = tmp_path / "cache"
    with pytest.raises(UserError, match=r"ms 2\.1\.3: sha256 mismatch for ms-2\.1\.3\.tgz.*deleted"):
        D.download_corpus(cache, only=["ms"], progress=False, packages=manifest)
    assert calls == ["ms"]
    leftovers = [p.name for p in (cache / "downloads").rglob("*") if p.is_file()]
    assert leftovers == []
    assert not (cache / "repos" / by_name(manifest, "ms").source).exists()


def test_one_failure_does_not_stop_the_others(tmp_path, monkeypatch, manifest):
    ms = by_name(manifest, "ms")
    broken = replace(ms, name="ms-broken", repo_name="vercel/ms-broken", file="ms-x.tgz", sha256="0" * 64)
    fake_client(monkeypatch, "npm", MS_TGZ)
    with pytest.raises(UserError, match="1 of 2 packages failed: ms-broken"):
        D.download_corpus(tmp_path, progress=False, packages=[ms, broken])
    assert (tmp_path / "repos" / ms.source).is_file()
    rows = [json.loads(line) for line in (tmp_path / METADATA_FILE).read_text().splitlines()]
    assert [r["repo_name"] for r in rows] == ["vercel/ms"]


def test_cached_artifacts_are_not_downloaded_again(tmp_path, monkeypatch, manifest):
    calls = fake_client(monkeypatch, "npm", MS_TGZ)
    assert D.download_corpus(tmp_path, only=["ms"], progress=False, packages=manifest) == tmp_path
    assert calls == ["ms"]
    no_client(monkeypatch)
    D.download_corpus(tmp_path, only=["ms"], progress=False, packages=manifest)  # fails if it fetches

    ms = by_name(manifest, "ms")
    entry = tmp_path / "repos" / "vercel__ms-2.1.3.tgz"
    assert entry.read_bytes() == MS_TGZ.read_bytes()
    assert D.sha256_file(tmp_path / "downloads" / "npm" / "ms-2.1.3.tgz") == ms.sha256
    rows = [json.loads(line) for line in (tmp_path / METADATA_FILE).read_text().splitlines()]
    assert rows == [{"repo_name": "vercel/ms", "source": "vercel__ms-2.1.3.tgz"}]


def test_a_corrupt_cached_artifact_is_downloaded_again(tmp_path, monkeypatch, manifest):
    cached = tmp_path / "downloads" / "npm" / "ms-2.1.3.tgz"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"half a download")
    calls = fake_client(monkeypatch, "npm", MS_TGZ)
    D.download_corpus(tmp_path, only=["ms"], progress=False, packages=manifest)
    assert calls == ["ms"]
    assert cached.read_bytes() == MS_TGZ.read_bytes()


def test_a_client_that_delivers_another_file_is_an_error(tmp_path, monkeypatch, manifest):
    def fetch(pkg: Package, into: Path) -> Path:
        return Path(shutil.copy(MS_TGZ, into / "ms-9.9.9.tgz"))

    monkeypatch.setitem(D.FETCHERS, "npm", fetch)
    with pytest.raises(UserError, match="expected ms-2.1.3.tgz from npm, got ms-9.9.9.tgz"):
        D.download_corpus(tmp_path, only=["ms"], progress=False, packages=manifest)


def test_without_apt_get_the_debian_packages_are_skipped_with_one_warning(tmp_path, monkeypatch, manifest):
    real_which = shutil.which
    monkeypatch.setattr(D.shutil, "which", lambda cmd: None if cmd == "apt-get" else real_which(cmd))
    fake_client(monkeypatch, "npm", MS_TGZ)
    warnings: list[str] = []
    monkeypatch.setattr(D.logger, "warning", warnings.append)
    D.download_corpus(tmp_path, only=["ms", "golang-github-mattn-go-isatty-dev"], progress=False)
    assert len(warnings) == 1 and "skipping the 1 Debian packages" in warnings[0]
    assert [p.name for p in (tmp_path / "repos").iterdir()] == ["vercel__ms-2.1.3.tgz"]


def test_without_npm_the_error_says_what_to_install(tmp_path, monkeypatch, manifest):
    real_which = shutil.which
    monkeypatch.setattr(D.shutil, "which", lambda cmd: None if cmd == "npm" else real_which(cmd))
    with pytest.raises(UserError, match="npm not found: install Node.js"):
        D.download_corpus(tmp_path, only=["ms"], progress=False, packages=manifest)


def test_pin_reports_the_file_and_its_sha256(monkeypatch, capsys):
    fake_client(monkeypatch, "npm", MS_TGZ)
    row = D.pin("npm", "ms", "2.1.3")
    assert row == {
        "ecosystem": "npm",
        "name": "ms",
        "version": "2.1.3",
        "file": "ms-2.1.3.tgz",
        "sha256": D.sha256_file(MS_TGZ),
        "size": MS_TGZ.stat().st_size,
    }
    assert main(["demo", "pin", "npm", "ms", "2.1.3"]) == 0
    assert f'sha256 = "{D.sha256_file(MS_TGZ)}"' in capsys.readouterr().out


def test_sdist_is_found_among_an_index_files():
    pkg = Package("pypi", "pyyaml", "6.0.1", "", "", "", "", "", ())
    files = ["PyYAML-6.0.1-cp311-cp311-manylinux_2_17_x86_64.whl", "PyYAML-6.0.tar.gz", "PyYAML-6.0.1.tar.gz"]
    assert D._sdist_name(pkg, files) == "PyYAML-6.0.1.tar.gz"
    odd = Package("pypi", "functools32", "3.2.3-2", "", "", "", "", "", ())
    assert D._sdist_name(odd, ["functools32-3.2.3-1.tar.gz", "functools32-3.2.3-2.tar.gz"]).endswith(
        "-2.tar.gz"
    )
    with pytest.raises(UserError, match="no sdist of version 9"):
        D._sdist_name(replace(pkg, version="9"), files)


def test_docs_table_lists_every_package(manifest):
    doc = (Path(__file__).parents[3] / "docs" / "demo-corpus.md").read_text(encoding="utf-8")
    for p in manifest:
        assert f"| `{p.name}` | {p.ecosystem} | {p.version} | {p.repo_name} |" in doc, p.name


# --- Debian packages: the source subtree only, never outside the target


def test_debian_extraction_keeps_the_source_subtree_and_the_copyright_file(tmp_path):
    repo = extract_source(ISATTY_DEB, tmp_path / "repo")
    files = {p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file()}
    assert files == ISATTY_GO | {"debian/copyright"}  # no changelog, no other usr/share/doc file
    assert "package isatty" in (repo / "isatty_bsd.go").read_text()
    copyright_text = (repo / "debian" / "copyright").read_text()
    assert copyright_text.startswith(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    )
    assert "Files: *\n" in copyright_text and "License: Expat\n" in copyright_text


def test_debian_package_becomes_a_directory_in_repos(tmp_path, monkeypatch, manifest):
    calls = fake_client(monkeypatch, "debian", ISATTY_DEB)
    D.download_corpus(tmp_path, only=["golang-github-mattn-go-isatty-dev"], progress=False, packages=manifest)
    repo = tmp_path / "repos" / "mattn__go-isatty-0.0.17-1"
    assert {p.name for p in repo.iterdir()} == ISATTY_GO | {"debian"}
    no_client(monkeypatch)
    D.download_corpus(tmp_path, only=["mattn/go-isatty"], progress=False, packages=manifest)
    assert calls == ["golang-github-mattn-go-isatty-dev"]
    # no temporary leftovers; the hidden layout marker is skipped by --repos-dir
    assert sorted(p.name for p in (tmp_path / "repos").iterdir()) == [f".{repo.name}.layout", repo.name]


def test_a_debian_entry_of_an_older_layout_is_extracted_again(tmp_path, monkeypatch, manifest):
    """A cache laid out before debian/copyright was carried must not keep the old tree silently."""
    fake_client(monkeypatch, "debian", ISATTY_DEB)
    D.download_corpus(tmp_path, only=["mattn/go-isatty"], progress=False, packages=manifest)
    repo = tmp_path / "repos" / "mattn__go-isatty-0.0.17-1"
    marker = tmp_path / "repos" / f".{repo.name}.layout"
    shutil.rmtree(repo / "debian")  # what layout 1 wrote: the source subtree only, no marker
    marker.unlink()
    no_client(monkeypatch)  # the cached .deb is reused, only the layout is redone
    D.download_corpus(tmp_path, only=["mattn/go-isatty"], progress=False, packages=manifest)
    assert (repo / "debian" / "copyright").is_file()
    assert marker.read_text().strip() == LAYOUT_VERSION
    assert sorted(p.name for p in (tmp_path / "repos").iterdir()) == [marker.name, repo.name]


def make_deb(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    """A minimal .deb: an ar archive holding debian-binary, control.tar.xz and data.tar.xz."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tar.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tar.addfile(info, io.BytesIO(m[1]))
    ar = b"!<arch>\n"
    for name, data in [
        ("debian-binary", b"2.0\n"),
        ("control.tar.xz", lzma.compress(b"")),
        ("data.tar.xz", lzma.compress(buf.getvalue())),
    ]:
        ar += f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode() + data
        ar += b"\n" if len(data) % 2 else b""
    path.write_bytes(ar)
    return path


@pytest.mark.parametrize(
    "evil",
    [
        "./usr/share/gocode/src/github.com/o/n/../../../../../../../evil.go",
        "../evil.go",
        "/tmp/evil.go",
    ],
)
def test_debian_extraction_refuses_paths_outside_the_target(tmp_path, evil):
    deb = make_deb(
        tmp_path / "evil.deb",
        [("./usr/share/gocode/src/github.com/o/n/ok.go", b"package n\n"), (evil, b"package evil\n")],
    )
    target = tmp_path / "out" / "repo"
    with pytest.raises(UserError, match="refusing a path outside the target"):
        extract_source(deb, target)
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["evil.deb"]


def test_debian_extraction_does_not_recreate_links(tmp_path):
    link = tarfile.TarInfo("./usr/share/gocode/src/github.com/o/n/passwd")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    doc_link = tarfile.TarInfo("./usr/share/doc/link/copyright")  # a copyright file that is a link
    doc_link.type, doc_link.linkname = tarfile.SYMTYPE, "/etc/shadow"
    src = "./usr/share/gocode/src/github.com/o/n/"
    deb = make_deb(
        tmp_path / "link_1_all.deb",
        [(src + "n.go", b"package n\n"), (src + "a/a.go", b"package a\n"), link, doc_link],
    )
    repo = extract_source(deb, tmp_path / "repo")
    assert sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*")) == ["a", "a/a.go", "n.go"]


def test_debian_without_source_is_an_error(tmp_path):
    deb = make_deb(tmp_path / "doc.deb", [("./usr/share/doc/x/copyright", b"MIT\n")])
    with pytest.raises(UserError, match="no source under"):
        extract_source(deb, tmp_path / "repo")


# --- the CLI


def test_cli_list_prints_the_manifest(capsys, manifest):
    assert main(["demo", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["package", "ecosystem", "version"]
    assert len(lines) == 2 + len(manifest)
    assert any(line.split()[:4] == ["ms", "npm", "2.1.3", "vercel/ms"] for line in lines)


def test_cli_download_prints_the_build_command(tmp_path, capsys, monkeypatch):
    fake_client(monkeypatch, "npm", MS_TGZ)
    assert main(["demo", "download", "--cache", str(tmp_path), "--only", "ms", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"--repos-dir {tmp_path / 'repos'} --repo-metadata {tmp_path / METADATA_FILE}" in out
    assert (tmp_path / "repos" / "vercel__ms-2.1.3.tgz").is_file()


def test_cli_download_error_is_one_line(tmp_path, capsys):
    assert main(["demo", "download", "--cache", str(tmp_path), "--only", "left-pad"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "stackcoder demo: error: not in the demo manifest: left-pad (see `stackcoder demo list`)"


def test_default_cache_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("STACKCODER_CACHE", str(tmp_path / "c"))
    assert default_cache() == tmp_path / "c"
    monkeypatch.delenv("STACKCODER_CACHE")
    assert default_cache() == Path.home() / ".cache" / "stackcoder" / "demo"


# --- slow: the real registries, the real corpus


def reachable(host: str) -> bool:
    try:
        socket.create_connection((host, 443), timeout=5).close()
        return True
    except OSError:
        return False


@pytest.mark.slow
def test_real_download_of_two_small_packages(tmp_path, manifest):
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    if not (
        reachable("pypi.org") and reachable("files.pythonhosted.org") and reachable("registry.npmjs.org")
    ):
        pytest.skip("the PyPI or npm registry is unreachable")
    D.download_corpus(tmp_path, only=["markupsafe", "ms"], progress=False)
    for name in ("markupsafe", "ms"):
        p = by_name(manifest, name)
        assert D.sha256_file(tmp_path / "repos" / p.source) == p.sha256
    with tarfile.open(tmp_path / "repos" / "pallets__markupsafe-2.1.5.tar.gz") as tar:
        assert "MarkupSafe-2.1.5/src/markupsafe/_speedups.c" in tar.getnames()


@pytest.mark.slow
def test_expectations_match_scancode_and_enry_on_the_cached_corpus(manifest, demo_corpus):
    """The manifest's license classes and languages, checked on the corpus in the default cache: the
    class is what ``LicenseDetector`` (recipe settings) gives the repository's root files."""
    cache = demo_corpus
    missing = [p.name for p in manifest if not (cache / "repos" / p.source).exists()]
    if missing:
        pytest.skip(
            f"the demo corpus is not in {cache} (run `stackcoder demo download`); missing {missing[:3]}"
        )
    pytest.importorskip("licensedcode", reason="needs scancode-toolkit")
    enry = pytest.importorskip("enry", reason="needs enry-python")
    from helpers import make_file
    from stackcoder.data.license import LicenseDetector
    from stackcoder.data.license_files import is_license_file
    from stackcoder.data.readers.raw import file_order
    from stackcoder.data.recipe import load_recipe

    settings = {k: v for k, v in load_recipe()["license"].items() if k != "keep_classes"}
    wrong = []
    for p in manifest:
        files = sorted(repo_files(cache / "repos" / p.source), key=lambda f: file_order(f[0]))
        docs = [
            make_file(data.decode("utf-8", "replace"), path, repo_name=p.repo_name) for path, data in files
        ]
        labeled = LicenseDetector(**settings).run(iter(docs))
        root = {d.metadata[F.LICENSE_TYPE] for d in labeled if "/" not in d.metadata[F.PATH]}
        root_code = {
            d.metadata[F.LICENSE_TYPE]
            for d in docs
            if "/" not in d.metadata[F.PATH] and not is_license_file(d.metadata[F.PATH])
        }
        # vendored files count: the pipeline labels them (is_vendor) but keeps them, and enry calls
        # every dist/ folder, *.d.ts and even normalize.css vendored
        langs = {
            enry.get_language(path.rsplit("/", 1)[-1], data)
            for path, data in files
            if not enry.is_binary(data[:8000])
        }
        if (root_code or root) != {p.expect_license_class} or not set(p.languages) <= langs:
            wrong.append((p.name, p.expect_license_class, root_code or root, set(p.languages) - langs))
    assert wrong == []


def repo_files(entry: Path):
    """(path under the repository root, bytes): a directory, or an archive without its one top folder."""
    if entry.is_dir():
        yield from (
            (p.relative_to(entry).as_posix(), p.read_bytes()) for p in entry.rglob("*") if p.is_file()
        )
        return
    import zipfile

    if entry.suffix == ".zip":
        with zipfile.ZipFile(entry) as z:
            items = [(i.filename, z.read(i)) for i in z.infolist() if not i.is_dir()]
    else:
        with tarfile.open(entry) as t:
            items = [(m.name, t.extractfile(m).read()) for m in t.getmembers() if m.isfile()]
    tops = {name.split("/", 1)[0] for name, _ in items}
    strip = len(tops) == 1 and all("/" in name for name, _ in items)
    yield from ((name.split("/", 1)[1] if strip else name, data) for name, data in items)
