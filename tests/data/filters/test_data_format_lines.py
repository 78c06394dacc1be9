from __future__ import annotations

import pytest

from helpers import make_file
from stackcoder.data import fields as F
from stackcoder.data.filters import DataFormatLinesFilter


def verdict(doc, **kwargs):
    (out,) = DataFormatLinesFilter(**kwargs).run(iter([doc]))
    return out.metadata.get(F.REMOVED_STAGE), out.metadata.get(F.REMOVED_REASON)


@pytest.mark.parametrize("language", ["Text", "JSON", "YAML", "Web Ontology Language", "Graphviz (DOT)"])
def test_512_line_cap(language):
    assert verdict(make_file("a: 1\n" * 512, language=language)) == (None, None)
    assert verdict(make_file("a: 1\n" * 513, language=language)) == ("data_format_lines", "too_many_lines")


@pytest.mark.parametrize("language", ["Python", "TOML", "XML", "CSV", None])
def test_other_languages_untouched(language):
    assert verdict(make_file("a = 1\n" * 5_000, language=language)) == (None, None)


def test_configurable():
    assert (
        verdict(make_file("a\n" * 11, language="CSV"), languages=["CSV"], max_lines=10)[1] == "too_many_lines"
    )
