"""Cleaning of issue and pull-request texts (recipe.md §6): email-reply boilerplate, long comments.

GitHub lets people answer a notification by email; the comment then carries the mail client's
quote header ("On Mon, Jan 2, 2023 at 10:00 AM Jane <notifications@github.com> wrote:"), the quoted
thread (``>`` lines) and GitHub's footer ("Reply to this email directly, view it on GitHub", "You
are receiving this because ..."). Only the reply itself is text. Which patterns BigCode matched is
published as code, not as a rule; ours (below, tested on such replies) follow the same three cues:
a header naming notifications@github.com or a "<date> <time> AM/PM ... wrote" line, the footer,
``Signed-off-by:`` trailers (a name and an email), and underscore separator lines.
"""

from __future__ import annotations

import re

_FOOTER = re.compile(
    r"Reply to this email directly|view it on GitHub|You are receiving this because|"
    r"unsubscribe from this thread|mute the thread",
    re.IGNORECASE,
)
# the quote header of a reply: "On <date>, <who> <notifications@github.com> wrote:", "<who> wrote:"
# after an Outlook/Gmail date, or a "From:" block of a forwarded notification
_HEADER = re.compile(
    r"notifications@github\.com|^\s*On\b.{0,200}\bwrote:\s*$|\d+/\d+/\d+,? \d{1,2}:\d{2}\s*[AP]M\b.*\bwrote\b"
    r"|^\s*From:\s",
    re.IGNORECASE,
)
# what trails a footer: its links, the rest of the quote, blank lines
_FOOTER_TAIL = re.compile(
    r"^\s*(?:>.*|<?https?://\S*>?[,.]?|<[^>\s]+@github\.com>|\.|or unsubscribe.*)?\s*$", re.I
)
_SIGNED_OFF = re.compile(r"^\s*Signed-off-by:.*<[^>]*>\s*$", re.IGNORECASE)
_SEPARATOR = re.compile(r"^\s*_{20,}\s*$")
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)


def strip_email_reply(text: str) -> str:
    """``text`` without a GitHub email reply's quote header, quoted thread and footer, without
    ``Signed-off-by:`` trailers and underscore separators; other text is returned stripped."""
    if not text:
        return ""
    lines = text.strip().split("\n")
    footer = [i for i, line in enumerate(lines) if _FOOTER.search(line)]
    if footer:
        end = footer[-1] + 1
        while end < len(lines) and _FOOTER_TAIL.match(lines[end]):
            end += 1
        footer.append(end - 1)
    header = next((i for i, line in enumerate(lines) if _HEADER.search(line)), None)
    if footer and header is not None and header <= footer[-1]:
        # the header starts the quoted notification, the footer's last line ends it; anything the
        # sender wrote below it (bottom-posting) stays
        lines = lines[:header] + lines[footer[-1] + 1 :]
    elif footer:
        start = footer[0]
        while start > 0 and (lines[start - 1].lstrip().startswith(">") or not lines[start - 1].strip()):
            start -= 1  # the quoted thread right above the footer
        lines = lines[:start] + lines[footer[-1] + 1 :]
    elif header is not None and "notifications@github.com" in lines[header].lower():
        # a reply without footer (the client cut it): the header and the quote after it
        end = header + 1
        while end < len(lines) and (lines[end].lstrip().startswith(">") or not lines[end].strip()):
            end += 1
        lines = lines[:header] + lines[end:]
    kept = [line for line in lines if not _SIGNED_OFF.match(line) and not _SEPARATOR.match(line)]
    return "\n".join(kept).strip()


def truncate_lines(
    text: str, max_lines: int = 80, head: int = 60, tail: int = 20, marker: str = "[Truncated]"
) -> str:
    """A text of more than ``max_lines`` lines keeps its first ``head`` and last ``tail`` lines,
    joined by ``marker`` on a line of its own (recipe.md §6: 80 lines -> 60 + [Truncated] + 20)."""
    lines = text.split("\n")
    if len(lines) <= max_lines:
        return text
    return "\n".join(lines[:head]) + f"\n{marker}\n" + "\n".join(lines[len(lines) - tail :])


def remove_html_comments(text: str) -> str:
    """Markdown comments (``<!-- ... -->``): the hidden prompts of issue and PR templates."""
    return _HTML_COMMENT.sub("", text) if "<!--" in text else text
