"""HTML visible text (recipe.md §1.3): "HTML: keep only if visible text (without script/style) is
≥ 100 characters and ≥ 20% of the file".

Visible text is what BigCode's filter counts (bigcode-dataset, preprocessing/filtering.py,
``filter_html``: BeautifulSoup's ``get_text()`` after removing script and style elements), measured
with the parser that filter used, the standard library's ``html.parser``, without building a tree.
Text nodes and CDATA sections count, entities decoded; tags, comments, the doctype, processing
instructions and, as BeautifulSoup has it, the text inside ``template``, ``rt`` and ``rp`` do not.
A text node of only ASCII whitespace counts as one character outside ``pre``/``textarea`` (also
BeautifulSoup's rule), which halves the count of an indented page. Entities are decoded with HTML5
rules (``html.unescape``); BeautifulSoup differs by a character on an unknown entity (``&bogus;``).
Thresholds are inclusive as the recipe words them (the original code used ``>``).
"""

from __future__ import annotations

from html.parser import HTMLParser

from datatrove.data import Document

from stackcoder.data import fields as F
from stackcoder.data.step import FileFilter

# BeautifulSoup's get_text() (since 4.10) also leaves out template and ruby annotation text
HIDDEN = frozenset({"script", "style", "template", "rt", "rp"})
PRESERVE_WHITESPACE = frozenset({"pre", "textarea"})  # BeautifulSoup's default set
ASCII_SPACES = dict.fromkeys(map(ord, " \n\t\x0c\r"))
CHUNK = 1 << 16


class _VisibleText(HTMLParser):
    """Counts visible characters; html.parser itself treats script/style bodies as raw text.

    Text arrives in pieces (feed chunks, entity boundaries); like BeautifulSoup it is joined into
    one text node until the next tag, comment or declaration, then counted.
    """

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.visible = 0
        self._open = dict.fromkeys(HIDDEN | PRESERVE_WHITESPACE, 0)  # per tag: open elements
        self._hidden = 0  # open elements of HIDDEN tags, kept as one number: tested per text node
        self._preserve = 0
        self._text: list[str] = []

    def pending(self) -> int:
        """Characters that may still become visible text: the open text node and unparsed input."""
        return sum(map(len, self._text)) + len(self.rawdata)

    def _end_text(self) -> None:
        if not self._text:
            return
        text = "".join(self._text)
        self._text.clear()
        if self._hidden:
            return
        if not self._preserve and not text.translate(ASCII_SPACES):
            self.visible += 1  # collapsed to one space or newline
        else:
            self.visible += len(text)

    def _count(self, tag: str, step: int) -> None:
        self._open[tag] += step
        if tag in HIDDEN:
            self._hidden += step
        else:
            self._preserve += step

    def handle_starttag(self, tag, attrs):
        self._end_text()
        if tag in self._open:
            self._count(tag, 1)

    def handle_endtag(self, tag):
        self._end_text()
        if self._open.get(tag):  # an end tag without its start tag closes nothing
            self._count(tag, -1)

    def handle_data(self, data):
        self._text.append(data)

    def handle_comment(self, data):
        self._end_text()

    def handle_decl(self, decl):
        self._end_text()

    def handle_pi(self, data):
        self._end_text()

    def unknown_decl(self, data):
        self._end_text()
        if data.startswith("CDATA[") and not self._hidden:
            self.visible += len(data) - len("CDATA[")

    def close(self):
        super().close()
        self._end_text()


def visible_chars(html: str, enough: float | None = None) -> int:
    """Visible characters of ``html``.

    With ``enough``, parsing stops as soon as the answer to "at least ``enough``?" is known, and
    the result is exact only in that respect: a count reached (>= enough) or a bound that the
    rest of the file cannot lift (< enough).
    """
    parser = _VisibleText()
    for start in range(0, len(html), CHUNK):
        end = start + CHUNK
        parser.feed(html[start:end])
        if enough is not None:
            if parser.visible >= enough:
                return parser.visible
            bound = parser.visible + parser.pending() + max(0, len(html) - end)
            if bound < enough:
                return bound
    parser.close()
    return parser.visible


class HtmlFilter(FileFilter):
    name = "🌐 HTML visible text"
    stage = "html"

    def __init__(self, min_visible_chars: int = 100, min_visible_fraction: float = 0.2):
        super().__init__()
        self.min_visible_chars = min_visible_chars
        self.min_visible_fraction = min_visible_fraction

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if doc.metadata.get(F.LANGUAGE) != "HTML":
            return True
        text = doc.text
        needed = max(self.min_visible_chars, self.min_visible_fraction * len(text))
        # decoding entities only shrinks text, so a file shorter than the bar cannot reach it
        if len(text) < needed or visible_chars(text, enough=needed) < needed:
            return False, "html_visible_text"
        return True
