"""The server on a real (small, random) checkpoint through FastAPI's test client: the three API
shapes give the library's greedy output, concurrent requests are batched on the KV cache and still
give each its own output, streams and limits behave, bad input is a 4xx with a message."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from fastapi.testclient import TestClient
from tokenizers import Tokenizer

from stackcoder.model.generate import SamplingParams, generate_text
from stackcoder.model.hf import load_model
from stackcoder.serve.app import create_app
from stackcoder.serve.config import ServeConfig

PROMPTS = [
    "def add(a, b):",
    "class Stack:\n    def push(self, x):",
    "import os\n",
    "for i in range(10):",
    "x = 1",
]


@pytest.fixture(scope="module")
def client(serve_checkpoint):
    with TestClient(create_app(ServeConfig(model=str(serve_checkpoint), max_batch=8))) as c:
        yield c


@pytest.fixture(scope="module")
def library(serve_checkpoint):
    model, tok = load_model(serve_checkpoint), Tokenizer.from_file(str(serve_checkpoint / "tokenizer.json"))
    stop = [
        tok.token_to_id(t)
        for t in ("<|endoftext|>", "<file_sep>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>")
    ]

    def run(prompt: str | list[int], n: int) -> str:
        return generate_text(model, tok, [prompt], SamplingParams(max_new_tokens=n), stop_token_ids=stop)[
            0
        ].text

    return run, tok


def test_generate_is_the_library_greedy_output(client, library):
    run, _ = library
    for prompt in PROMPTS:
        r = client.post("/generate", json={"inputs": prompt, "parameters": {"max_new_tokens": 24}})
        assert r.status_code == 200, r.text
        assert r.json() == {"generated_text": run(prompt, 24)}
    full = client.post(
        "/generate",
        json={
            "inputs": "x = 1",
            "parameters": {"max_new_tokens": 5, "return_full_text": True, "details": True},
        },
    )
    body = full.json()
    assert body["generated_text"] == "x = 1" + run("x = 1", 5)
    assert body["details"]["generated_tokens"] == len(body["details"]["tokens"]) <= 5


def test_concurrent_requests_are_batched_and_each_gets_its_own_output(client, library):
    run, _ = library
    service = client.app.state.service
    expected = {p: run(p, 40) for p in PROMPTS}
    results: dict[int, str] = {}

    def one(k: int) -> None:
        r = client.post(
            "/generate", json={"inputs": PROMPTS[k % len(PROMPTS)], "parameters": {"max_new_tokens": 40}}
        )
        results[k] = r.json()["generated_text"]

    service.engine.max_rows_seen = 0
    threads = [threading.Thread(target=one, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {k: results[k] for k in range(12)} == {k: expected[PROMPTS[k % len(PROMPTS)]] for k in range(12)}
    assert service.engine.max_rows_seen > 1  # rows really were decoded together


def test_generate_stream_events_add_up(client, library):
    run, _ = library
    with client.stream(
        "POST", "/generate_stream", json={"inputs": "def add(a, b):", "parameters": {"max_new_tokens": 16}}
    ) as s:
        assert s.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[5:]) for line in s.iter_lines() if line.startswith("data:")]
    assert events and all(set(e) >= {"index", "token", "generated_text", "details"} for e in events)
    assert all(e["details"] is None for e in events[:-1])
    last = events[-1]
    assert last["generated_text"] == "".join(e["token"]["text"] for e in events) == run("def add(a, b):", 16)
    assert (
        last["details"]["finish_reason"] in ("length", "eos_token")
        and last["details"]["generated_tokens"] <= 16
    )


def test_openai_completions_build_the_fim_prompt(client, library, serve_checkpoint):
    """In the server's default FIM order, SPM (docs/serve.md: an edit at the cursor keeps the rest of
    the prompt cached): <fim_prefix><fim_suffix>suffix<fim_middle>prefix."""
    run, tok = library
    fim = [tok.token_to_id("<fim_prefix>"), tok.token_to_id("<fim_suffix>")]
    fim += [*tok.encode("\n    return y\n").ids, tok.token_to_id("<fim_middle>")]
    fim += tok.encode("def f(x):\n    ").ids
    r = client.post(
        "/v1/completions",
        json={"prompt": "def f(x):\n    ", "suffix": "\n    return y\n", "max_tokens": 20, "temperature": 0},
    )
    body = r.json()
    assert r.status_code == 200 and body["object"] == "text_completion"
    assert body["choices"][0]["text"] == run(fim, 20)
    assert body["usage"]["prompt_tokens"] == len(fim)
    assert client.get("/v1/models").json()["data"][0]["id"] == serve_checkpoint.name
    two = client.post(
        "/v1/completions", json={"prompt": ["a", "b"], "max_tokens": 3, "n": 2, "temperature": 0.7, "seed": 1}
    ).json()
    assert [c["index"] for c in two["choices"]] == [0, 1, 2, 3]


def test_infill_puts_other_files_first_as_repository_context(client, library):
    run, tok = library
    service = client.app.state.service
    ids = service.repo_prompt("me/proj", [("util.py", "def one():\n    return 1\n")], "main.py", "x = ", "\n")
    text = tok.decode(ids, skip_special_tokens=False)
    assert (
        text == "<repo_name>me/proj<file_sep>util.py\ndef one():\n    return 1\n"
        "<file_sep><fim_prefix><fim_suffix>\n<fim_middle>main.py\nx = "
    )
    req = {
        "input_prefix": "x = ",
        "input_suffix": "\n",
        "input_extra": [{"filename": "util.py", "text": "def one():\n    return 1\n"}],
        "repo_name": "me/proj",
        "filename": "main.py",
        "n_predict": 12,
        "temperature": 0,
    }
    body = client.post("/infill", json=req).json()
    assert body["content"] == run(ids, 12) and body["tokens_evaluated"] == len(ids)
    plain = client.post(
        "/infill", json={"input_prefix": "x = ", "input_suffix": "\n", "n_predict": 4, "temperature": 0}
    ).json()
    assert plain["tokens_evaluated"] == len(service.fim_prompt("x = ", "\n"))


def test_llm_ls_request_as_it_sends_it(client):
    """The body llm-ls (llm-vscode's language server) posts for StarCoder2, byte for byte: its
    `starcoder2` template's FIM tokens, its default parameters, to TGI's /generate."""
    prompt = "<fim_prefix>def fib(n):\n    <fim_suffix>\n    return b<fim_middle>"
    raw = (
        '{"inputs":'
        + json.dumps(prompt)
        + ',"parameters":{"max_new_tokens":60,"temperature":0.2,"top_p":0.95,'
        '"return_full_text":false}}'
    ).encode()
    r = client.post(
        "/generate", content=raw, headers={"Content-Type": "application/json", "User-Agent": "llm-ls/0.5.3"}
    )
    assert (
        r.status_code == 200
        and isinstance(r.json()["generated_text"], str)
        and set(r.json()) == {"generated_text"}
    )


@pytest.mark.parametrize(
    ("path", "body", "status", "says"),
    [
        ("/generate", b"{not json", 422, "JSON"),
        ("/generate", {"inputs": 12}, 422, "inputs"),
        ("/generate", {"inputs": ""}, 422, "inputs"),
        ("/generate", {"inputs": "x", "parameters": {"max_new_tokens": -1}}, 422, "max_new_tokens"),
        ("/generate", {"inputs": "x", "parameters": {"max_new_tokens": 10**9}}, 422, "limit"),
        ("/generate", {"inputs": "x " * 2000, "parameters": {"max_new_tokens": 1}}, 413, "at most"),
        ("/generate", {"inputs": "x", "parameters": {"top_p": 0}}, 422, "top_p"),
        ("/v1/completions", {"prompt": []}, 422, "empty"),
        ("/v1/completions", {"prompt": "", "max_tokens": 4}, 422, "empty"),
        ("/v1/completions", {"prompt": "x", "max_tokens": "many"}, 422, "max_tokens"),
        ("/v1/completions", {"prompt": "x", "temperature": 9}, 422, "temperature"),
        ("/infill", {"input_prefix": "x", "n_predict": 10**7}, 422, "limit"),
    ],
)
def test_bad_input_is_a_4xx_with_a_message(client, path, body, status, says):
    if isinstance(body, bytes):
        r = client.post(path, content=body, headers={"Content-Type": "application/json"})
    else:
        r = client.post(path, json=body)
    assert r.status_code == status, r.text
    assert says.lower() in r.json()["error"].lower()


def test_full_queue_is_503_with_retry_after(serve_checkpoint):
    config = ServeConfig(model=str(serve_checkpoint), max_batch=1, max_queue=1, max_new_tokens=400)
    with TestClient(create_app(config)) as c:
        statuses: list[int] = []
        headers: list[dict] = []

        def one() -> None:
            r = c.post("/generate", json={"inputs": "x", "parameters": {"max_new_tokens": 400}})
            statuses.append(r.status_code)
            headers.append(dict(r.headers))

        threads = [threading.Thread(target=one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert 503 in statuses and 200 in statuses
        assert all(h.get("retry-after") == "1" for s, h in zip(statuses, headers, strict=True) if s == 503)
        assert c.get("/health").status_code == 200  # still serving


def test_stream_stops_when_the_client_goes_away(client):
    service = client.app.state.service
    with client.stream(
        "POST", "/generate_stream", json={"inputs": "x", "parameters": {"max_new_tokens": 400}}
    ) as s:
        lines = s.iter_lines()
        next(lines)
        next(lines)
    deadline = time.monotonic() + 10
    while service.engine.load["active"] and time.monotonic() < deadline:
        time.sleep(0.02)
    steps = service.engine.steps
    time.sleep(0.3)
    assert (
        service.engine.load["active"] == 0 and service.engine.steps == steps
    )  # nothing decodes for it any more


def test_timeout_ends_a_request(serve_checkpoint):
    with TestClient(
        create_app(ServeConfig(model=str(serve_checkpoint), timeout_s=0.05, max_new_tokens=400))
    ) as c:
        r = c.post("/generate", json={"inputs": "x", "parameters": {"max_new_tokens": 400, "details": True}})
        assert r.status_code == 200 and r.json()["details"]["generated_tokens"] < 400


def test_api_key_and_cors(serve_checkpoint):
    config = ServeConfig(
        model=str(serve_checkpoint), api_key="s3cret", cors_origins=["http://localhost:3000"]
    )
    with TestClient(create_app(config)) as c:
        assert c.post("/generate", json={"inputs": "x"}).status_code == 401
        assert (
            c.post("/generate", json={"inputs": "x"}, headers={"Authorization": "Bearer nope"}).status_code
            == 401
        )
        ok = c.post(
            "/generate",
            json={"inputs": "x", "parameters": {"max_new_tokens": 2}},
            headers={"Authorization": "Bearer s3cret"},
        )
        assert ok.status_code == 200
        assert (
            c.get("/health").status_code == 200 and c.get("/").status_code == 200
        )  # open: liveness, the page
        pre = c.options(
            "/generate", headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"}
        )
        assert pre.headers["access-control-allow-origin"] == "http://localhost:3000"
        assert (
            "access-control-allow-origin"
            not in c.get("/health", headers={"Origin": "http://evil.example"}).headers
        )


def test_default_binds_loopback_and_info(client):
    assert ServeConfig(model="x").host == "127.0.0.1"
    info = client.get("/info").json()
    assert info["max_total_tokens"] == 512 and info["model_pipeline_tag"] == "text-generation"
    assert "/v1/completions" in client.get("/openapi.json").json()["paths"]


def test_checkpoint_is_what_vllm_and_tgi_load(serve_checkpoint):
    """vLLM and TGI load StarCoder2 checkpoints through transformers' config and tokenizer classes."""
    transformers = pytest.importorskip("transformers")
    config = transformers.AutoConfig.from_pretrained(serve_checkpoint)
    assert config.model_type == "starcoder2" and config.architectures in (None, ["Starcoder2ForCausalLM"])
    model = transformers.AutoModelForCausalLM.from_pretrained(serve_checkpoint)
    tok = transformers.AutoTokenizer.from_pretrained(serve_checkpoint)
    assert type(model).__name__ == "Starcoder2ForCausalLM" and tok.convert_tokens_to_ids("<fim_middle>") == 2


def test_engine_loop_survives_asyncio_use(serve_checkpoint):
    """The engine is driven from any event loop (uvicorn's, or a script's)."""
    from stackcoder.serve.service import CompletionService

    service = CompletionService(ServeConfig(model=str(serve_checkpoint)))
    try:
        params = service.params(8, 0.0, None, None, None, None)

        async def both() -> list[str]:
            results = await asyncio.gather(
                *(service.complete(service.encode(p), params) for p in PROMPTS[:3])
            )
            return [r.text for r in results]

        assert len(asyncio.run(both())) == 3
    finally:
        service.close()
