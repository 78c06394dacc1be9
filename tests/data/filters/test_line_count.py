from __future__ import annotations

from helpers import make_file
from stackcoder.data import fields as F
from stackcoder.data.filters import LineCountFilter
from stackcoder.data.filters.lines import count_lines, line_lengths


def verdict(step, doc):
    (out,) = step.run(iter([doc]))
    return out.metadata.get(F.REMOVED_STAGE), out.metadata.get(F.REMOVED_REASON)


def test_line_definition():
    assert count_lines("") == 0
    assert count_lines("a") == 1
    assert count_lines("a\n") == 1  # a final newline does not open a line
    assert count_lines("a\n\n") == 2
    assert count_lines("a\r\nb\rc\x0cd\u2028e") == 5  # every Unicode line boundary counts
    assert line_lengths("ab\r\ncde\n") == [2, 3]  # terminators are not part of the length


def test_boundary():
    step = LineCountFilter(max_lines=100_000)
    assert verdict(step, make_file("x\n" * 100_000)) == (None, None)
    assert verdict(step, make_file("x\n" * 100_001)) == ("line_count", "too_many_lines")
    # one line without a final newline is still a line
    assert verdict(step, make_file("x\n" * 100_000 + "y")) == ("line_count", "too_many_lines")


def test_short_files_and_small_caps():
    step = LineCountFilter(max_lines=3)
    assert verdict(step, make_file("a\nb\nc\n")) == (None, None)
    assert verdict(step, make_file("a\nb\nc\nd")) == ("line_count", "too_many_lines")
    assert verdict(step, make_file("a long single line that is longer than three characters")) == (None, None)
