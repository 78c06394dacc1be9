"""An issue as training text (recipe.md §6), usernames anonymised on the way:

``<issue_start>Title: {title}\\nusername_0: {text}<issue_comment>username_1: {text}…<issue_closed>``
then ``<|endoftext|>``.

``<issue_closed>`` stands where the issue was closed (again after a reopening, if so); a reopening
itself has no token and no text. ``length_bytes`` becomes the text's UTF-8 size. Removes nothing.
"""

from __future__ import annotations

from datatrove.data import Document

from stackcoder.data import fields as F
from stackcoder.data.gharchive.issue_thread import ENTRIES, TITLE
from stackcoder.data.gharchive.usernames import Usernames
from stackcoder.data.step import FileStep
from stackcoder.tokenizer.special_tokens import EOS, ISSUE_CLOSED, ISSUE_COMMENT, ISSUE_START


def render_issue(title: str, entries: list[dict]) -> str:
    names = Usernames()
    for entry in entries:
        names.add(entry["author"])
    opened = entries[0]
    parts = [f"{ISSUE_START}Title: {names.replace(title)}\n{names.add(opened['author'])}: "]
    parts.append(names.replace(opened["text"]))
    for entry in entries[1:]:
        if entry["event"] == "comment":
            parts.append(f"{ISSUE_COMMENT}{names.add(entry['author'])}: {names.replace(entry['text'])}")
        elif entry["event"] == "closed":
            parts.append(ISSUE_CLOSED)
    parts.append(EOS)
    return "".join(parts)


class IssueRenderer(FileStep):
    name = "🖨 issue text"
    stage = "issue_render"

    def process(self, doc: Document) -> None:
        doc.text = render_issue(doc.metadata.pop(TITLE) or "", doc.metadata.pop(ENTRIES))
        doc.metadata[F.LENGTH_BYTES] = len(doc.text.encode("utf-8", "surrogatepass"))
        return None
