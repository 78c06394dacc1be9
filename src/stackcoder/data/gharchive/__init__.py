"""GitHub issues and pull requests from GHArchive event dumps (recipe.md §6; docs/gharchive.md).

Two kinds of pass: ``events`` reads the dumps (``reader``), drops opted-out events (``optout``) and
writes the rest bucketed by repository (``partition``); then one pass per part, ``issues`` and
``pull_requests``, groups each bucket's events per thread and turns threads into texts:

- issues: ``issue_thread`` (timeline, synthesised opening) -> ``issue_text`` (email replies,
  truncation) -> ``issue_bots`` -> ``issue_keep`` (the keep rule) -> ``issue_render``;
- pull requests: ``pr_thread`` -> ``pr_filters`` -> ``pr_sampling`` (per repository) ->
  ``pr_contents`` (base/head files from git) -> ``pr_render`` (seeded).

``passes`` wires them from the recipe. What follows the texts (PII, near-dedup within a part,
decontamination, malware, the parquet writer) is shared with the other non-file sources.
"""

from stackcoder.data.gharchive.bots import BotNames
from stackcoder.data.gharchive.issue_bots import IssueBotFilter
from stackcoder.data.gharchive.issue_keep import IssueKeepFilter
from stackcoder.data.gharchive.issue_render import IssueRenderer, render_issue
from stackcoder.data.gharchive.issue_text import IssueTextCleaner
from stackcoder.data.gharchive.issue_thread import IssueThreadBuilder
from stackcoder.data.gharchive.optout import EventOptOut
from stackcoder.data.gharchive.partition import EventPartitioner, ThreadReader
from stackcoder.data.gharchive.pr_contents import PullRequestContents
from stackcoder.data.gharchive.pr_filters import PullRequestFilter
from stackcoder.data.gharchive.pr_render import PullRequestRenderer
from stackcoder.data.gharchive.pr_sampling import RepositorySampler
from stackcoder.data.gharchive.pr_thread import PullRequestBuilder
from stackcoder.data.gharchive.reader import EventReader

__all__ = [
    "BotNames",
    "EventOptOut",
    "EventPartitioner",
    "EventReader",
    "IssueBotFilter",
    "IssueKeepFilter",
    "IssueRenderer",
    "IssueTextCleaner",
    "IssueThreadBuilder",
    "PullRequestBuilder",
    "PullRequestContents",
    "PullRequestFilter",
    "PullRequestRenderer",
    "RepositorySampler",
    "ThreadReader",
    "render_issue",
]
