"""A pull request as training text (recipe.md §6), seeded per PR, usernames anonymised. Segments
are joined without newlines:

- ``<pr>Title: {title}\\nusername_0: {description}<pr_status>opened<repo_name>{owner/repo}``;
- ``<pr_base>`` and per file ``<pr_file>{path}<pr_base_code>{code}``: the whole base file with
  probability ``full_base_probability`` (0.2), else the lines any push changed (and any review
  comment shows) plus 0-``base_extra_lines`` (32) lines on each side, drawn per file;
- ``<pr_diff>`` and per file ``<pr_file>{path}`` + ``<pr_diff_hunk>@@ -a,b +c,d @@\\n…`` hunks with
  3-9 context lines (drawn per diff), for the first head and again whenever a later entry shows a
  new head commit (a push), diffed against the base;
- conversation comments ``<pr_comment>{user}: {text}<pr_event_id>{id}``; reviews
  ``<pr_review>{user}: {body}<pr_event_id>{id}<pr_review_state>{state}``; review comments
  ``<pr_review_comment><pr_event_id>{id}<pr_in_reply_to_review_id>{id}[<pr_in_reply_to_comment_id>{id}]
  <pr_file>{path}<pr_diff_hunk_comment_line>{line}<pr_diff_hunk>{hunk}<pr_comment>{user}: {text}``;
- ``<pr>{user}<pr_status>closed<pr_is_merged>{True|False}`` (and ``reopened``); then ``<|endoftext|>``.

Texts are cleaned as BigCode's code did (unpublished in the paper, recipe.toml ``[pull_requests]``):
email replies and ``<!-- -->`` template comments stripped, more than 80 lines cut to 60 +
``[Truncated]`` + 20, comments under ``min_text_chars`` (20) left out (reviews keep their state),
longer than ``max_text_chars`` (1,000) cut, titles cut at ``max_title_chars`` (500). A PR whose text
is under ``min_chars`` (200) or over ``max_chars`` (100,000) is removed (``too_short``, ``too_long``).
"""

from __future__ import annotations

from datatrove.data import Document

from stackcoder.data import fields as F
from stackcoder.data.gharchive.diff import changed_range, hunk_old_range, shift_hunk, unified_hunks
from stackcoder.data.gharchive.pr_contents import BASE_FILES, HEAD_FILES
from stackcoder.data.gharchive.pr_filters import clean_text
from stackcoder.data.gharchive.pr_sampling import pr_rng
from stackcoder.data.gharchive.pr_thread import ENTRIES
from stackcoder.data.gharchive.text import truncate_lines
from stackcoder.data.gharchive.usernames import Usernames
from stackcoder.data.step import FileStep
from stackcoder.tokenizer import special_tokens as T

OMITTED = "[OMITTED]"


class _TooLong(Exception):
    pass


def _merge(ranges: dict[str, tuple[int, int]], path: str, r: tuple[int, int] | None) -> None:
    if r is not None:
        old = ranges.get(path)
        ranges[path] = r if old is None else (min(old[0], r[0]), max(old[1], r[1]))


class PullRequestRenderer(FileStep):
    name = "🖨 pull request text"
    stage = "pr_render"

    def __init__(
        self,
        seed: int = 0,
        min_chars: int = 200,
        max_chars: int = 100_000,
        full_base_probability: float = 0.2,
        base_extra_lines: int = 32,
        diff_context_min: int = 3,
        diff_context_max: int = 9,
        min_text_chars: int = 20,
        max_text_chars: int = 1_000,
        max_title_chars: int = 500,
        max_review_hunk_chars: int = 10_000,
    ):
        super().__init__()
        self.seed = seed
        self.min_chars, self.max_chars = min_chars, max_chars
        self.full_base_probability, self.base_extra_lines = full_base_probability, base_extra_lines
        self.context = (diff_context_min, diff_context_max)
        self.min_text_chars, self.max_text_chars = min_text_chars, max_text_chars
        self.max_title_chars, self.max_review_hunk_chars = max_title_chars, max_review_hunk_chars

    def _text(self, text: str | None, names: Usernames, short_ok: bool = False) -> str | None:
        text = truncate_lines(clean_text(text))
        if len(text) < self.min_text_chars and not short_ok:
            return None
        return names.replace(text[: self.max_text_chars])

    def process(self, doc: Document) -> str | None:
        meta = doc.metadata
        try:
            text = self.render(doc)
        except _TooLong:
            return "too_long"
        finally:
            for key in (ENTRIES, BASE_FILES, HEAD_FILES):
                meta.pop(key, None)
        if len(text) < self.min_chars:
            return "too_short"
        doc.text = text + T.EOS
        meta[F.LENGTH_BYTES] = len(doc.text.encode("utf-8", "surrogatepass"))
        return None

    def render(self, doc: Document) -> str:
        meta, rng = doc.metadata, pr_rng(self.seed, "render", doc)
        entries, base_files, head_files = meta[ENTRIES], meta[BASE_FILES], meta[HEAD_FILES]
        names = Usernames()
        for entry in entries:
            names.add(entry["author"])
        old = {path: text.split("\n") for path, text in base_files.items()}
        new = {head: {p: t.split("\n") for p, t in files.items()} for head, files in head_files.items()}
        ranges: dict[str, tuple[int, int]] = {}
        for files in new.values():
            for path, lines in files.items():
                _merge(ranges, path, changed_range(old[path], lines))
        for e in entries:  # a review comment's hunk should point into the code shown
            if e["event"] == "review_comment" and e["path"] in ranges:
                r = hunk_old_range(e["diff_hunk"] or "")
                _merge(
                    ranges, e["path"], r and (min(r[0], len(old[e["path"]])), min(r[1], len(old[e["path"]])))
                )
        windows: dict[str, tuple[int, int]] = {}
        for path in sorted(ranges):
            n = len(old[path])
            if rng.random() < self.full_base_probability:
                windows[path] = (0, n)
            else:
                lo, hi = ranges[path]
                extra_before, extra_after = (
                    rng.randint(0, self.base_extra_lines),
                    rng.randint(0, self.base_extra_lines),
                )
                windows[path] = (max(0, lo - extra_before), min(n, hi + extra_after))

        parts: list[str] = []
        size = 0

        def add(*segments: str) -> None:
            nonlocal size
            parts.extend(segments)
            size += sum(len(s) for s in segments)
            if size > self.max_chars:
                raise _TooLong

        def diff(head: str) -> None:
            context = rng.randint(*self.context)
            add(T.PR_DIFF)
            for path in sorted(new[head]):
                start = windows[path][0] if path in windows else 0
                hunks = unified_hunks(old[path][start:], new[head][path][start:], context)
                if hunks:
                    add(T.PR_FILE, path, *(T.PR_DIFF_HUNK + h for h in hunks))

        opened = entries[0]
        title = (meta.get("title") or "").strip()[: self.max_title_chars]
        body = self._text(meta.get("body"), names, short_ok=True) or ""
        add(T.PR, f"Title: {names.replace(title)}\n{names.add(opened['author'])}: {body}")
        add(T.PR_STATUS, "opened", T.REPO_NAME, meta[F.REPO_NAME], T.PR_BASE)
        for path, (start, end) in windows.items():
            add(T.PR_FILE, path, T.PR_BASE_CODE, "\n".join(old[path][start:end]))
        current = next(iter(new))
        diff(current)
        for e in entries[1:]:
            head = e.get("head")
            if e["event"] != "comment" and head and head != current and head in new:
                diff(head)
                current = head
            user = names.add(e["author"])
            if e["event"] == "pr":
                if e["action"] in ("closed", "reopened"):
                    add(T.PR, user, T.PR_STATUS, e["action"])
                    if e["action"] == "closed":
                        add(T.PR_IS_MERGED, str(bool(e["merged"])))
            elif e["event"] == "comment":
                text = self._text(e["text"], names)
                if text is not None:
                    add(T.PR_COMMENT, f"{user}: {text}", T.PR_EVENT_ID, str(e["id"]))
            elif e["event"] == "review":
                text = self._text(e["text"], names, short_ok=True)
                add(T.PR_REVIEW, f"{user}: {text}" if text else user, T.PR_EVENT_ID, str(e["id"]))
                add(T.PR_REVIEW_STATE, e["state"])
            elif e["event"] == "review_comment":
                text = self._text(e["text"], names)
                if text is None:
                    continue
                add(T.PR_REVIEW_COMMENT, T.PR_EVENT_ID, str(e["id"]))
                if e["review_id"] is not None:
                    add(T.PR_IN_REPLY_TO_REVIEW_ID, str(e["review_id"]))
                if e["in_reply_to"] is not None:
                    add(T.PR_IN_REPLY_TO_COMMENT_ID, str(e["in_reply_to"]))
                hunk = shift_hunk(e["diff_hunk"] or "", windows.get(e["path"], (0, 0))[0])
                if len(hunk) > self.max_review_hunk_chars:
                    hunk = OMITTED
                add(T.PR_FILE, e["path"], T.PR_DIFF_HUNK_COMMENT_LINE, str(e["position"] or 0))
                add(T.PR_DIFF_HUNK, hunk, T.PR_COMMENT, f"{user}: {text}")
        return "".join(parts)
