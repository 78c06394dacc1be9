"""The playground page (``GET /``) in a headless browser against the real app on the tiny random
checkpoint: ask for a completion in the middle of some code, see it stream in, accept it with Tab,
dismiss another with Escape. Debian's chromium is used as is; nothing is downloaded."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which(CHROMIUM) is None, reason=f"{CHROMIUM} is missing (apt install chromium)"
    ),
]

# (prefix, suffix) pairs: the model is random and often ends at once (it draws a FIM or EOS token), so
# the test takes the first pair it completes with some text, greedily, which makes the answer fixed.
CANDIDATES = [
    (
        "class Stack:\n    def push(self, x):\n        ",
        "\n\n    def pop(self):\n        return self.items.pop()\n",
    ),
    ("int main() {\n    ", "\n    return 0;\n}\n"),
    ("def main():\n    ", "\n\n\nif __name__ == '__main__':\n    main()\n"),
    ("def add(a, b):\n    ", "\n"),
]
MAX_TOKENS = 24

# Every text #status shows, in order: "streaming…" lasts too short to be caught by polling.
RECORD_STATUS = """() => {
  window.__statuses = [];
  const el = document.getElementById("status");
  new MutationObserver(() => window.__statuses.push(el.textContent))
    .observe(el, {childList: true, characterData: true, subtree: true});
}"""
SET_CARET = """(at) => {
  const e = document.getElementById("editor");
  e.focus();
  e.setSelectionRange(at, at);
}"""
SETTLED = """() => {
  const s = document.getElementById("status");
  return s.textContent.startsWith("done") || s.classList.contains("error");
}"""


@contextmanager
def serving(app) -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread on a free loopback port; yield its base URL."""
    import uvicorn

    # Bound here and handed over, so no other process can take the port in between.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert thread.is_alive(), "the server thread ended before /health answered"
            assert time.monotonic() < deadline, "/health did not answer 200 within 120 s"
            time.sleep(0.1)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()
    assert not thread.is_alive(), "the server did not shut down"


def make_app(checkpoint, **config):
    from stackcoder.serve.app import create_app
    from stackcoder.serve.config import ServeConfig

    return create_app(ServeConfig(model=str(checkpoint), **config))


@pytest.fixture
def live_server(serve_checkpoint, monkeypatch) -> Iterator[str]:
    from stackcoder.serve.config import API_KEY_ENV

    monkeypatch.delenv(API_KEY_ENV, raising=False)  # a key in the environment would lock the page out
    with serving(make_app(serve_checkpoint)) as base:
        yield base


@contextmanager
def browser_page(base: str):
    """A fresh page on ``base``; the test fails on any uncaught script error in it."""
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 600})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(base + "/")
            yield page
            assert not errors, errors
        finally:
            browser.close()


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2  # what the page's selectionStart counts


def pick_prompt(base: str) -> tuple[str, str, str]:
    """The first candidate the server completes with some text, and that text."""
    for prefix, suffix in CANDIDATES:
        body = {"prompt": prefix, "suffix": suffix, "max_tokens": MAX_TOKENS, "temperature": 0}
        response = httpx.post(f"{base}/v1/completions", json=body, timeout=120)
        assert response.status_code == 200, response.text
        if text := response.json()["choices"][0]["text"]:
            return prefix, suffix, text
    pytest.fail("the random model completed none of the candidate prompts with any text")


def test_playground_completes_and_accepts(live_server, tmp_path):
    prefix, suffix, expected = pick_prompt(live_server)
    with browser_page(live_server) as page:
        assert page.title() == "stackcoder playground"
        assert page.input_value("#max_tokens") == "64"
        # Greedy, so the completion is the same on every run (the model is random, the decoding not).
        page.fill("#temperature", "0")
        page.fill("#max_tokens", str(MAX_TOKENS))

        page.fill("#editor", prefix + suffix)
        page.evaluate(SET_CARET, utf16_len(prefix))
        page.evaluate(RECORD_STATUS)
        with page.expect_request("**/v1/completions") as request:
            page.keyboard.press("Control+Space")
        sent = request.value.post_data_json
        assert sent["prompt"] == prefix and sent["suffix"] == suffix and sent["stream"] is True
        assert (sent["max_tokens"], sent["temperature"], sent["top_p"]) == (MAX_TOKENS, 0, 0.95)
        assert request.value.headers.get("authorization") is None

        page.wait_for_function(SETTLED, timeout=120_000)
        status = page.text_content("#status")
        suggestion = page.text_content("#suggestion")
        assert status.startswith(f"done: {len(suggestion)} chars"), status
        # The page shows what the server generates, streamed or not (a textarea holds no \r).
        assert suggestion == expected.replace("\r\n", "\n").replace("\r", "\n")
        assert "streaming…" in page.evaluate("window.__statuses")
        page.screenshot(path=tmp_path / "playground.png")
        assert (tmp_path / "playground.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        page.keyboard.press("Tab")  # accept: inserted at the caret, the editor keeps focus
        text = prefix + suggestion + suffix
        assert page.input_value("#editor") == text
        assert page.text_content("#suggestion") == ""
        assert page.evaluate("document.activeElement.id") == "editor"
        caret = utf16_len(prefix + suggestion)
        assert page.evaluate(
            "(e => [e.selectionStart, e.selectionEnd])(document.getElementById('editor'))"
        ) == [caret, caret]
        page.keyboard.press("Tab")  # nothing suggested: indent
        text = prefix + suggestion + "    " + suffix
        assert page.input_value("#editor") == text

        page.click("#complete")  # the button asks at the caret too; Escape throws the answer away
        page.wait_for_function(SETTLED, timeout=120_000)
        assert page.text_content("#status").startswith("done"), page.text_content("#status")
        page.keyboard.press("Escape")
        assert page.text_content("#suggestion") == ""
        assert page.text_content("#status") == "dismissed"
        assert page.input_value("#editor") == text


def test_playground_api_key(serve_checkpoint):
    """With a key configured the page still loads; it shows the 401's message until the key is given."""
    with serving(make_app(serve_checkpoint, api_key="s3cret")) as base, browser_page(base) as page:
        page.fill("#editor", "int main() {\n    \n}\n")
        page.evaluate(SET_CARET, 17)
        page.keyboard.press("Alt+Backslash")
        page.wait_for_function(SETTLED, timeout=60_000)
        assert page.get_attribute("#status", "class") == "error"
        assert page.text_content("#status").startswith("error 401: missing or wrong API key")

        page.fill("#api_key", "s3cret")
        with page.expect_request("**/v1/completions") as request:
            page.press("#api_key", "Enter")  # Enter in a parameter field asks again
        assert request.value.headers["authorization"] == "Bearer s3cret"
        page.wait_for_function(SETTLED, timeout=60_000)
        assert page.text_content("#status").startswith("done"), page.text_content("#status")


def test_playground_marks_text_from_the_training_data_and_searches_it(serve_checkpoint, index_dir, dataset):
    import pyarrow.parquet as pq

    from stackcoder.index.portrait import normalize

    rows = [r for f in sorted((dataset / "files").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    copied = next(r for r in rows if r["language"] == "Python" and len(normalize(r["content"])) > 1500)
    mine = "# é: mine, not in the data 😀\nresult = my_own_function(1, 2)\n"
    excerpt = copied["content"][300:800]
    with serving(make_app(serve_checkpoint, index=str(index_dir))) as base, browser_page(base) as page:
        page.fill("#editor", mine + excerpt)
        with page.expect_request("**/overlap") as request:
            page.click("#overlap")
        assert request.value.post_data_json == {"document": mine + excerpt}
        page.wait_for_function("document.getElementById('overlap_status').textContent.includes('span')")
        marks = page.eval_on_selector_all("mark.seen", "ms => ms.map(m => m.textContent)")
        assert len(marks) == 1
        # the mark lies inside the copied part (the emoji before it is two UTF-16 units: offsets map)
        assert marks[0] in excerpt and len(marks[0]) > 300
        with page.expect_request("**/overlap") as again:
            page.fill("#editor", mine + excerpt + "\n")  # an edit makes the marks stale at once…
            assert page.eval_on_selector_all("mark.seen", "ms => ms.length") == 0
        assert again.value.post_data_json == {
            "document": mine + excerpt + "\n"
        }  # …and, after a pause, looked up again
        page.wait_for_function("document.querySelectorAll('mark.seen').length === 1")

        page.fill("#search_q", f'"{copied["path"].rsplit("/", 1)[-1].split(".")[0]}"')
        page.press("#search_q", "Enter")
        page.wait_for_selector(".hit")
        assert "file(s) match" in page.text_content("#results")
        wheres = page.eval_on_selector_all(".hit .where", "ws => ws.map(w => w.textContent)")
        assert f"{copied['repo_name']}/{copied['path']}" in wheres
