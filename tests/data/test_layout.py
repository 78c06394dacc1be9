"""``DatasetLayout``: the parts of a built dataset, found from the dataset or from one of its parts."""

from __future__ import annotations

from stackcoder.data.layout import BUILD_OUTPUTS, DOCUMENTS, FILES, TOKENS, DatasetLayout


def test_parts_and_resolve(tmp_path):
    layout = DatasetLayout(tmp_path)
    assert layout.files == tmp_path / "files" and layout.filtered == tmp_path / "work" / "filtered"
    assert layout.logs("final") == tmp_path / "logs" / "final" and layout.manifest.name == "build.json"
    assert not layout.is_built() and layout.record_parts() == []
    for name in ("documents", "issues", "text/docs", "text/papers", "unrelated"):
        (tmp_path / name).mkdir(parents=True)
    (tmp_path / "files").mkdir()
    assert layout.is_built()
    assert layout.record_parts() == ["documents", "issues", "text/docs", "text/papers"]
    # the dataset or the part itself
    assert DatasetLayout.resolve(tmp_path, FILES) == tmp_path / "files"
    assert DatasetLayout.resolve(tmp_path / "files", FILES) == tmp_path / "files"
    assert DatasetLayout.resolve(tmp_path, DOCUMENTS) == tmp_path / "documents"
    assert DatasetLayout.resolve(tmp_path, TOKENS) == tmp_path  # no tokens/ yet: the path itself
    assert "build.json" not in BUILD_OUTPUTS and {"files", "work", "logs", "README.md"} <= set(BUILD_OUTPUTS)
