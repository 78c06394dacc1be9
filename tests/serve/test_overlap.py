"""`stackcoder serve --index`: /overlap in the editor extension's shape, /search, and attribution of
completions; without an index, clear errors."""

from __future__ import annotations

import asyncio

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from helpers import random_text
from stackcoder.errors import UserError
from stackcoder.index.portrait import normalize
from stackcoder.index.service import DatasetIndex
from stackcoder.serve.app import create_app
from stackcoder.serve.config import ServeConfig
from stackcoder.serve.overlap import attribute


@pytest.fixture(scope="module")
def client(serve_checkpoint, index_dir):
    with TestClient(create_app(ServeConfig(model=str(serve_checkpoint), index=str(index_dir)))) as c:
        yield c


@pytest.fixture(scope="module")
def bare(serve_checkpoint):
    with TestClient(create_app(ServeConfig(model=str(serve_checkpoint)))) as c:
        yield c


@pytest.fixture(scope="module")
def a_file(dataset) -> dict:
    rows = [r for f in sorted((dataset / "files").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    return next(r for r in rows if r["language"] == "Python" and len(normalize(r["content"])) > 1500)


def test_overlap_answers_the_editor_extension(client, a_file):
    # the extension posts ±250 characters around the cursor
    document = "x = compute_something_of_mine(1, 2, 3)  # not in the data\n" + a_file["content"][400:900]
    r = client.post("/overlap", json={"document": document})
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["spans"] and body["spans"]
    start, end = body["spans"][0]
    assert 58 <= start < 58 + 100 and end > start + 300 and end <= len(document)
    unseen = "\n".join(f"value_{i} = compute({i}, {i * 7})  # mine" for i in range(30))
    assert client.post("/overlap", json={"document": unseen}).json() == {"spans": []}
    assert client.post("/overlap", json={}).status_code == 422


def test_search_route(client, a_file):
    r = client.get("/search", params={"q": "def", "language": "Python", "limit": 3})
    assert r.status_code == 200
    body = r.json()
    assert body["total"] >= 3 and len(body["hits"]) == 3
    hit = body["hits"][0]
    assert hit["source"]["language"] == "Python" and hit["source"]["license_type"]
    assert "<b>" in hit["snippet_html"] and hit["highlights"]
    repo = client.get("/search", params={"q": "", "repo": a_file["repo_name"], "path": a_file["path"]}).json()
    assert repo["total"] == 1 and repo["hits"][0]["source"]["blob_id"] == a_file["blob_id"]
    bad = client.get("/search", params={"q": '"unclosed'})
    assert bad.status_code == 422 and "cannot parse" in bad.json()["error"]
    assert client.get("/search", params={"q": "x", "limit": 0}).status_code == 422


def test_completions_carry_attribution_when_asked(client):
    r = client.post(
        "/generate",
        json={"inputs": "def add(a, b):", "parameters": {"max_new_tokens": 8, "attribution": True}},
    )
    assert r.status_code == 200 and isinstance(r.json()["attribution"], list)
    plain = client.post("/generate", json={"inputs": "def add(a, b):", "parameters": {"max_new_tokens": 8}})
    assert "attribution" not in plain.json()
    o = client.post(
        "/v1/completions", json={"prompt": "def add(a, b):", "max_tokens": 8, "attribution": True}
    )
    assert o.status_code == 200 and isinstance(o.json()["choices"][0]["attribution"], list)
    i = client.post(
        "/infill", json={"input_prefix": "def f(", "input_suffix": ")", "n_predict": 4, "attribution": True}
    )
    assert i.status_code == 200 and isinstance(i.json()["attribution"], list)
    assert "attribution" not in client.post("/infill", json={"input_prefix": "x", "n_predict": 2}).json()
    s = client.post(
        "/v1/completions", json={"prompt": "x", "max_tokens": 2, "attribution": True, "stream": True}
    )
    assert s.status_code == 422 and "without streaming" in s.json()["error"]


def test_attribution_finds_copied_text_with_its_license(index_dir, a_file):
    """What a completion that copies the data gets back (a random model copies nothing, so the
    function the routes call is given such a completion directly)."""
    generated = a_file["content"][300:800]
    spans = asyncio.run(attribute(DatasetIndex(index_dir), generated))
    assert spans and spans[0].sources_total >= 1
    src = next(s for s in spans[0].sources if s.path == a_file["path"])
    assert src.license_type == a_file["license_type"] and src.detected_licenses == list(
        a_file["detected_licenses"]
    )


@pytest.mark.parametrize(("size", "seed"), [(5_000, 0), (20_000, 1), (100_000, 2)])
def test_random_text_is_not_in_the_data(client, index_dir, size, seed):
    """~1% of the offsets of any text hit the filters by chance: neither /overlap nor attribution
    may report them (issue 13)."""
    text = random_text(size, seed, "code" if seed % 2 else "chars")
    assert client.post("/overlap", json={"document": text}).json() == {"spans": []}
    assert asyncio.run(attribute(DatasetIndex(index_dir), text)) == []


def test_a_pasted_slice_is_found_by_overlap_and_attribution(client, index_dir, a_file):
    piece = a_file["content"][600:1000]
    before = random_text(2_000, 5)
    text = before + piece + random_text(2_000, 6)
    [[start, end]] = client.post("/overlap", json={"document": text}).json()["spans"]
    assert len(before) <= start and end <= len(before) + len(piece) and end - start >= 300
    spans = asyncio.run(attribute(DatasetIndex(index_dir), text))
    best = max(spans, key=lambda s: s.end - s.start)
    assert (best.start, best.end) == (start, end) and best.confirmed and best.admitted_by == "confirmed"
    assert a_file["repo_name"] in {s.repo_name for s in best.sources}
    assert all(start <= s.start and s.end <= end for s in spans)


def test_the_server_threshold_gives_the_raw_view(serve_checkpoint, index_dir):
    text = random_text(5_000, 0)
    config = ServeConfig(model=str(serve_checkpoint), index=str(index_dir), index_max_chance=1.0)
    with TestClient(create_app(config)) as c:
        ranges = c.post("/overlap", json={"document": text}).json()["spans"]
    assert len(ranges) > 10  # every chance hit, as before issue 13
    with pytest.raises(UserError, match="--index"):
        ServeConfig(model=str(serve_checkpoint), index_max_chance=1.0)
    with pytest.raises(UserError, match="not a probability"):
        create_app(ServeConfig(model=str(serve_checkpoint), index=str(index_dir), index_max_chance=-1))


def test_without_an_index_the_routes_say_how_to_get_one(bare):
    r = bare.post("/overlap", json={"document": "x" * 100})
    assert r.status_code == 404 and "--index" in r.json()["error"] and r.json()["error_type"] == "not_found"
    assert bare.get("/search", params={"q": "x"}).status_code == 404
    g = bare.post("/generate", json={"inputs": "x", "parameters": {"max_new_tokens": 2, "attribution": True}})
    assert g.status_code == 422 and "--index" in g.json()["error"]


def test_a_bad_index_fails_before_serving(serve_checkpoint, tmp_path):
    from stackcoder.errors import UserError

    with pytest.raises(UserError, match="not an index"):
        create_app(ServeConfig(model=str(serve_checkpoint), index=str(tmp_path)))
