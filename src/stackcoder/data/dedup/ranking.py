"""Which file of a duplicate group survives (recipe.md §1, stages 4 and 5): one sort key.

The Stack v2 keeps permissive before no_license before non_permissive, then more stars, more forks,
a later revision. The sources stop there; ours adds the smallest ``(repo_name, path)`` so the choice
never depends on the order files arrive in, and the dedup passes add ``file_id`` last, for two
files that agree on all of it. A missing (None) count or date ranks below every value, an unknown
license class below the three known ones.

The key is a tuple of plain ints and strings, smallest first = the file to keep, so it sorts the
same in Python, in pyarrow and in numpy, and is stored on disk as the columns ``RANK_COLUMNS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from stackcoder.data import fields as F

LICENSE_RANK = {F.PERMISSIVE: 0, F.NO_LICENSE: 1, F.NON_PERMISSIVE: 2}
UNKNOWN_LICENSE_RANK = 3
MISSING = 2**62  # larger than any negated count or date: a missing value sorts last
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# the key's parts as columns of the dedup passes' record files, in key order
RANK_COLUMNS = ("rank_license", "rank_stars", "rank_forks", "rank_date", F.REPO_NAME, F.PATH)

RankKey = tuple[int, int, int, int, str, str]


def _negated_count(value: Any) -> int:
    return MISSING if value is None or value == "" else -int(value)


def date_micros(value: str | None) -> int | None:
    """An ISO 8601 date as microseconds since 1970 UTC (a date without a zone is read as UTC).

    A value ``datetime.fromisoformat`` cannot read counts as missing: the readers already refuse
    malformed dates in repository metadata, and a table source's odd value must not stop a dedup.
    """
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def rank_key(meta: Mapping[str, Any]) -> RankKey:
    """Sort key of a file's metadata: the smallest key of a duplicate group is the survivor."""
    micros = date_micros(meta.get(F.REVISION_DATE))
    return (
        LICENSE_RANK.get(meta.get(F.LICENSE_TYPE), UNKNOWN_LICENSE_RANK),
        _negated_count(meta.get(F.STARS)),
        _negated_count(meta.get(F.FORKS)),
        MISSING if micros is None else -micros,
        meta.get(F.REPO_NAME) or "",
        meta.get(F.PATH) or "",
    )


def rank_columns(meta: Mapping[str, Any]) -> dict[str, Any]:
    """``rank_key`` as a record: column name -> value."""
    return dict(zip(RANK_COLUMNS, rank_key(meta), strict=True))


# what rank_key reads, for passes that read shards without their content
RANK_INPUTS = [F.LICENSE_TYPE, F.STARS, F.FORKS, F.REVISION_DATE, F.REPO_NAME, F.PATH]
