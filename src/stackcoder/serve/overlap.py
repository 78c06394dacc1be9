"""The training data, asked through the server (``stackcoder serve --index DIR``): ``POST /overlap``
in the shape the editor extension posts (``{"document": text}`` → ``{"spans": [[start, end], …]}``),
``GET /search`` for full-text search, and ``attribute``, which the completion routes call when a
request asks for ``attribution``. The logic is ``stackcoder.index.service``, the membership rule
included (a span is reported when the full-text index confirms it or its chain of n-grams is too
long for chance, at the threshold ``serve --index-max-chance`` sets); this is its schema and routes.
Index work is CPU-bound, so it runs in the thread pool, off the event loop."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from stackcoder.errors import UserError
from stackcoder.index.fulltext import Filters
from stackcoder.index.service import DatasetIndex
from stackcoder.serve.service import ServeError

MAX_DOCUMENT_CHARS = 1_000_000  # a query tests every offset: bounded work per request


class OverlapRequest(BaseModel):
    document: str = Field(..., max_length=MAX_DOCUMENT_CHARS, description="the text around the cursor")


class OverlapResponse(BaseModel):
    spans: list[list[int]] = Field(
        description="[start, end) character offsets of `document` found in the training data, merged: "
        "spans the full-text index confirms or whose chance probability is at most the server's "
        "threshold (lone chance hits of the Bloom filter are left out)"
    )


class Source(BaseModel):
    repo_name: str
    path: str
    blob_id: str
    language: str
    license_type: str
    detected_licenses: list[str]
    revision_id: str


class AttributionSpan(BaseModel):
    start: int = Field(description="offset in the generated text (characters)")
    end: int
    ngrams: int = Field(description="chained 50-character n-grams the span is made of")
    chance_probability: float = Field(description="the chance that this span is a false positive")
    admitted_by: Literal["confirmed", "chain"] = Field(
        description="confirmed: the full-text index found its text in the files below; chain: its "
        "chance probability is at most the server's threshold"
    )
    confirmed: bool = Field(description="whether the full-text index found the span's text in a file")
    sources_total: int = Field(description="files of the training data that hold the span")
    sources: list[Source] = Field(description="the first of them, with their licenses")


class SearchHit(BaseModel):
    score: float
    source: Source
    snippet: str
    highlights: list[list[int]] = Field(description="[start, end) ranges of `snippet` that match")
    snippet_html: str = Field(description="the snippet HTML-escaped, matches in <b>")


class SearchResponse(BaseModel):
    query: str
    total: int
    offset: int
    hits: list[SearchHit]


def index_of(request: Request) -> DatasetIndex:
    index = request.app.state.index
    if index is None:
        raise ServeError(
            404, "this server has no dataset index (start it with `stackcoder serve --index DIR`)"
        )
    return index


def require_index(index: DatasetIndex | None) -> DatasetIndex:
    """Checked before a completion starts, so a request that cannot be answered costs nothing."""
    if index is None:
        raise ServeError(422, "attribution needs a dataset index (start the server with --index DIR)")
    return index


async def attribute(index: DatasetIndex | None, text: str) -> list[AttributionSpan]:
    """Spans of a completion's text found in the training data by the index's membership rule,
    with sources and licenses."""
    index = require_index(index)
    spans = await run_in_threadpool(index.query, text, 1, 5)
    return [AttributionSpan(**s) for s in spans]


router = APIRouter(tags=["dataset"])


@router.post("/overlap", response_model=OverlapResponse)
async def overlap_route(req: OverlapRequest, request: Request) -> OverlapResponse:
    """Which parts of `document` are in the training data (the editor extension's membership test)."""
    index = index_of(request)
    return OverlapResponse(spans=await run_in_threadpool(index.overlap, req.document))


@router.get("/search", response_model=SearchResponse)
async def search_route(
    request: Request,
    q: str = Query(..., max_length=2000, description='tantivy syntax: words, "phrases", field:value'),
    language: str | None = Query(None, description="e.g. Python"),
    license: str | None = Query(None, description="a class (permissive, no_license) or an SPDX id"),
    repo: str | None = Query(None, description="owner/name, globs allowed"),
    path: str | None = Query(None, description="a glob over the whole path"),
    limit: int = Query(10, ge=1, le=100),
    offset: int = Query(0, ge=0, le=10_000),
) -> SearchResponse:
    """BM25 full-text search over the training data, with provenance and highlighted snippets."""
    index = index_of(request)
    filters = Filters(language=language, license=license, repo=repo, path=path)
    try:
        result = await run_in_threadpool(index.search, q, filters, limit, offset)
    except UserError as e:  # a query tantivy cannot parse
        raise ServeError(422, str(e)) from None
    return SearchResponse(**result)
