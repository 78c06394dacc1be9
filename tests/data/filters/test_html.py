from __future__ import annotations

import gzip
import json
import warnings
from pathlib import Path

import pytest

from helpers import make_file
from stackcoder.data import fields as F
from stackcoder.data.filters import HtmlFilter
from stackcoder.data.filters.html import visible_chars


def reason(text, language="HTML", **kwargs):
    (out,) = HtmlFilter(**kwargs).run(iter([make_file(text, "index.html", language=language)]))
    if F.REMOVED_STAGE in out.metadata:
        assert out.metadata[F.REMOVED_STAGE] == "html"
    return out.metadata.get(F.REMOVED_REASON)


def page(visible: str, hidden: str = "") -> str:
    return f"<html><head>{hidden}</head><body><p>{visible}</p></body></html>"


PAGES = [
    page("Hello &amp; welcome to the <b>docs</b>."),
    page("x" * 120, "<script>var s = '<p>not text</p>';</script><style>p { color: red }</style>"),
    "<!DOCTYPE html><!-- a comment --><title>T</title><p>a<br/>b</p><?php echo 1 ?><![CDATA[raw]]>",
    "<SCRIPT type='text/javascript'>if (a < b) {}</SCRIPT><p>after</p><script/><p>self-closed</p>",
    "<p>unclosed <div>tags &copy; &#169; &#xa9; &#128; <textarea>kept</textarea>",
    "<style>a{}</style><noscript>shown</noscript>  \n  <pre>  spaces  </pre>",
    "<template><p>x</p>y</template>z<ruby>漢<rp>(</rp><rt>kan</rt><rp>)</rp></ruby></template>",
    "<ul>\n    <li>one</li>\n    <li> two </li>\n</ul>\n<pre>\n    <b>  </b>\n</pre><textarea>   </textarea>",
]


def bigcode_visible_text(html: str) -> str:
    """BigCode's measure (bigcode-dataset preprocessing/filtering.py, filter_html), the reference."""
    bs4 = pytest.importorskip("bs4", reason="beautifulsoup4 (the reference) is not installed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # XMLParsedAsHTMLWarning on XHTML
        soup = bs4.BeautifulSoup(html, features="html.parser")
    for element in soup(["script", "style"]):
        element.extract()
    return soup.get_text()


@pytest.mark.parametrize("html", PAGES)
def test_visible_text_matches_bigcode_beautifulsoup(html):
    assert visible_chars(html) == len(bigcode_visible_text(html))


def test_real_pages_match_bigcode_beautifulsoup():
    # the HTML-like files of the language sample (Pygments' example files): real pages and templates
    sample = Path(__file__).parents[2] / "fixtures" / "language_sample" / "pygments_examples.jsonl.gz"
    with gzip.open(sample, "rt", encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    markup = {"HTML", "HTML+PHP", "HTML+ERB", "Handlebars", "Vue", "Genshi", "Mako", "Myghty", "Smarty"}
    markup |= {"Java Server Pages", "ColdFusion", "XSLT", "Liquid"}
    pages = [r["content"] for r in records if r["language"] in markup]
    assert len(pages) >= 14
    for html in pages:
        assert visible_chars(html) == len(bigcode_visible_text(html))


def test_whitespace_only_text_counts_one():
    assert visible_chars("<div>\n        <p>a</p>\n    </div>") == 3  # "\n", "a", "\n"
    assert visible_chars("<pre>\n        <p>a</p>\n    </pre>") == 15


def test_entities_decoded_html5_style():
    assert visible_chars("<p>&amp;&copy;&#169;&#xa9;</p>") == 4
    assert visible_chars("<p>&bogus;</p>") == len("&bogus;")  # BeautifulSoup: "&bogus"


def test_script_and_style_excluded():
    assert visible_chars(page("ab", "<script>alert('hello world')</script><style>b{}</style>")) == 2
    assert visible_chars("<p>&lt;tag&gt;</p>") == len("<tag>")


def test_min_visible_chars_boundary():
    # short pages, mostly text: only the 100-character minimum decides
    assert reason("<p>" + "v" * 100 + "</p>") is None
    assert reason("<p>" + "v" * 99 + "</p>") == "html_visible_text"
    assert reason("") == "html_visible_text"


def test_min_visible_fraction_boundary():
    # 1,000 characters with 200 visible: exactly 20%, kept; 199 visible in 1,000: dropped
    kept = "<p>" + "v" * 200 + "</p>" + "<br>" * 197 + "<hr/>"
    dropped = "<p>" + "v" * 199 + "</p>" + "<br>" * 196 + "<hr/>" * 2
    assert len(kept) == len(dropped) == 1_000 and visible_chars(kept) == 200 and visible_chars(dropped) == 199
    assert reason(kept) is None
    assert reason(dropped) == "html_visible_text"


def test_script_heavy_page_dropped():
    html = page("Short intro text. " * 8, "<script>" + "var x = 1;\n" * 500 + "</script>")
    assert reason(html) == "html_visible_text"


def test_only_html():
    assert reason("<p>x</p>", language="XML") is None
    assert reason("<p>x</p>", language="Vue") is None


@pytest.mark.parametrize(
    "html",
    [
        "<p>" + "word " * 100_000 + "</p>" + "<script>x</script>" * 10,  # enough text early
        "<script>" + "var x = 1;\n" * 50_000 + "</script><p>tail</p>",  # cannot reach it
        ("<div class='row'><span>cell text</span></div>\n" * 5_000) * 2,  # near the fraction
        "<p>" + "&amp;" * 40_000 + "</p>" + "<i>x</i>" * 30_000,
    ],
)
def test_early_stop_gives_the_same_verdict(html):
    exact = visible_chars(html)
    for enough in (100, 0.2 * len(html), exact, exact + 1, 0.5 * len(html)):
        assert (visible_chars(html, enough=enough) >= enough) == (exact >= enough)
