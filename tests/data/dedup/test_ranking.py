"""The survivor ranking (recipe.md §1 stages 4-5): one criterion at a time, the others equal."""

from __future__ import annotations

from stackcoder.data import fields as F
from stackcoder.data.dedup.ranking import date_micros, rank_columns, rank_key


def meta(**kw) -> dict:
    base = {
        F.LICENSE_TYPE: F.PERMISSIVE,
        F.STARS: 10,
        F.FORKS: 2,
        F.REVISION_DATE: "2023-01-01T00:00:00+00:00",
        F.REPO_NAME: "owner/repo",
        F.PATH: "a.py",
    }
    base.update(kw)
    return base


def best(*candidates: dict) -> dict:
    return min(candidates, key=rank_key)


def test_license_class_first_then_everything_else():
    permissive = meta(**{F.LICENSE_TYPE: F.PERMISSIVE, F.STARS: 0})
    no_license = meta(**{F.LICENSE_TYPE: F.NO_LICENSE, F.STARS: 1000})
    non_permissive = meta(**{F.LICENSE_TYPE: F.NON_PERMISSIVE, F.STARS: 5000})
    unknown = meta(**{F.LICENSE_TYPE: None, F.STARS: 9000})
    order = sorted([unknown, non_permissive, no_license, permissive], key=rank_key)
    assert order == [permissive, no_license, non_permissive, unknown]


def test_more_stars_win_and_missing_stars_rank_lowest():
    many, few, zero, missing = (
        meta(**{F.STARS: 50}),
        meta(**{F.STARS: 3}),
        meta(**{F.STARS: 0}),
        meta(**{F.STARS: None}),
    )
    assert sorted([missing, zero, few, many], key=rank_key) == [many, few, zero, missing]


def test_forks_decide_when_stars_tie():
    more, fewer, missing = meta(**{F.FORKS: 9}), meta(**{F.FORKS: 1}), meta(**{F.FORKS: None})
    assert sorted([missing, fewer, more], key=rank_key) == [more, fewer, missing]
    # stars outrank forks
    assert best(meta(**{F.STARS: 11, F.FORKS: 0}), meta(**{F.STARS: 10, F.FORKS: 99}))[F.STARS] == 11


def test_later_revision_wins_and_missing_date_ranks_lowest():
    later = meta(**{F.REVISION_DATE: "2024-03-01T12:00:00+00:00"})
    earlier = meta(**{F.REVISION_DATE: "2019-07-15"})
    ancient = meta(**{F.REVISION_DATE: "1960-01-01T00:00:00"})
    missing = meta(**{F.REVISION_DATE: None})
    unreadable = meta(**{F.REVISION_DATE: "last tuesday"})
    order = sorted([missing, unreadable, ancient, earlier, later], key=rank_key)
    assert order[:3] == [later, earlier, ancient]
    assert {id(m) for m in order[3:]} == {id(missing), id(unreadable)}


def test_dates_compare_across_time_zones():
    # 10:00 at UTC+02:00 is 08:00 UTC: earlier than 09:00 UTC
    assert date_micros("2024-01-01T10:00:00+02:00") < date_micros("2024-01-01T09:00:00Z")
    assert date_micros("1970-01-01T00:00:01") == 1_000_000  # no zone: UTC


def test_repo_and_path_break_ties_stably():
    a = meta(**{F.REPO_NAME: "alice/x", F.PATH: "z.py"})
    b = meta(**{F.REPO_NAME: "bob/x", F.PATH: "a.py"})
    c = meta(**{F.REPO_NAME: "alice/x", F.PATH: "a.py"})
    assert sorted([a, b, c], key=rank_key) == [c, a, b]
    assert sorted([b, c, a], key=rank_key) == [c, a, b]


def test_rank_columns_are_the_key():
    m = meta()
    assert tuple(rank_columns(m).values()) == rank_key(m)
