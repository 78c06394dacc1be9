from __future__ import annotations

import pytest

from helpers import make_file
from stackcoder.data import fields as F
from stackcoder.data.filters import LongLineFilter


def reason(doc, **kwargs):
    (out,) = LongLineFilter(**kwargs).run(iter([doc]))
    if F.REMOVED_STAGE in out.metadata:
        assert out.metadata[F.REMOVED_STAGE] == "long_lines"
    return out.metadata.get(F.REMOVED_REASON)


def lines(*lengths: int) -> str:
    return "".join("x" * n + "\n" for n in lengths)


def test_average_boundary():
    assert reason(make_file(lines(100, 100, 100), language="Python")) is None
    assert reason(make_file(lines(101, 101, 101), language="Python")) == "avg_line_length"
    # mean of 150 and 50 is exactly 100: kept; 151 and 50: 100.5, dropped
    assert reason(make_file(lines(150, 50), language="Python")) is None
    assert reason(make_file(lines(151, 50), language="Python")) == "avg_line_length"
    # the newline is not part of a line's length, nor a line of its own
    assert reason(make_file("x" * 100 + "\r\n", language="Python")) is None


def test_longest_line_boundary():
    short = lines(*[10] * 50)
    assert reason(make_file(short + lines(1_000), language="Python")) is None
    assert reason(make_file(short + lines(1_001), language="Python")) == "max_line_length"


def test_both_limits_report_longest_line():
    assert reason(make_file(lines(5_000), language="Python")) == "max_line_length"


@pytest.mark.parametrize(
    "language", ["HTML", "JSON", "Markdown", "Roff", "Roff Manpage", "SMT", "TeX", "Text", "XML"]
)
def test_markup_exception(language):
    # long lines and a high average are fine for markup and data formats...
    assert reason(make_file(lines(50_000, 300), language=language)) is None
    assert reason(make_file(lines(100_000), language=language)) is None
    # ...up to a line of 100,000 characters
    assert reason(make_file(lines(100_001), language=language)) == "max_line_length"


def test_markup_list_is_configurable_and_exact():
    doc = make_file(lines(2_000), language="YAML")  # not in the recipe's list
    assert reason(doc) == "max_line_length"
    assert reason(make_file(lines(2_000), language="YAML"), markup_languages=["YAML"]) is None


def test_empty_file_kept():
    assert reason(make_file("", language="Python")) is None
