"""OpenAI's shape: ``POST /v1/completions`` (with ``suffix``: the server builds the FIM prompt from the
tokenizer's own FIM tokens, so clients never need to know them) and ``GET /v1/models``. Fields in the
order of OpenAI's reference (https://platform.openai.com/docs/api-reference/completions/create);
fields we do not implement (``logprobs``, ``best_of``, penalties) are accepted and ignored."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from stackcoder.index.service import DatasetIndex
from stackcoder.serve.overlap import AttributionSpan, attribute, require_index
from stackcoder.serve.service import CompletionService, ServeError
from stackcoder.serve.sse import sse

FINISH = {"eos": "stop", "stop": "stop", "length": "length", "timeout": "length"}
MAX_CHOICES = 16  # prompts × n in one request


class CompletionRequest(BaseModel):
    model: str | None = None
    prompt: str | list[str] = Field(
        ..., description="text before the cursor; a list asks for one completion each"
    )
    best_of: int | None = None
    echo: bool = False
    frequency_penalty: float | None = None
    logit_bias: dict | None = None
    logprobs: int | None = None
    max_tokens: int = Field(16, ge=0, description="OpenAI's default: 16")
    n: int = Field(1, ge=1, le=16)
    presence_penalty: float | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: dict | None = None
    suffix: str | None = Field(None, description="text after the cursor: the completion fills the middle")
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    user: str | None = None
    attribution: bool = Field(
        False,
        description="stackcoder: also return each choice's spans found in the training data, with "
        "sources and licenses (needs `serve --index`; not with stream)",
    )


class Choice(BaseModel):
    text: str
    index: int
    logprobs: None = None
    finish_reason: str | None
    attribution: list[AttributionSpan] | None = Field(
        None, description="offsets in the completion, echo excluded"
    )


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class Completion(BaseModel):
    id: str
    object: str = "text_completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage | None = None


def _prompts(service: CompletionService, req: CompletionRequest) -> list[list[int]]:
    prompts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
    if not prompts:
        raise_empty()
    if req.suffix is not None:
        return [service.fim_prompt(p, req.suffix) for p in prompts]
    return [service.encode(p) for p in prompts]


def raise_empty() -> None:
    raise ServeError(422, "prompt is an empty list")


async def completions(
    service: CompletionService, req: CompletionRequest, dataset_index: DatasetIndex | None = None
) -> Completion | AsyncIterator[str]:
    """The whole answer, or with ``stream`` its events (every choice is queued before either)."""
    if req.attribution:
        if req.stream:
            raise ServeError(422, "attribution is given with whole answers only: ask without streaming")
        require_index(dataset_index)
    stop = [req.stop] if isinstance(req.stop, str) else req.stop
    prompts = _prompts(service, req)
    if len(prompts) * req.n > MAX_CHOICES:
        raise ServeError(
            422, f"{len(prompts)} prompts × n={req.n}: at most {MAX_CHOICES} completions per request"
        )
    jobs = []  # (choice index, prompt, handle): every request is queued before the first byte is sent
    try:
        for p_index, ids in enumerate(prompts):
            for k in range(req.n):
                seed = None if req.seed is None else req.seed + k
                params = service.params(req.max_tokens, req.temperature, req.top_p, None, stop, seed)
                jobs.append((p_index * req.n + k, p_index, ids, service.start(ids, params)))
    except ServeError:  # nothing is left running for a request that failed
        for *_, handle in jobs:
            handle.cancel()
        raise
    meta = {"id": f"cmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": service.model_id}
    texts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
    if req.stream:
        return _stream(service, jobs, meta, texts if req.echo else None)
    choices, completion_tokens = [], 0
    for index, p_index, _, handle in jobs:
        c = await service.collect(handle)
        completion_tokens += len(c.token_ids)
        text = (texts[p_index] if req.echo else "") + c.text
        spans = await attribute(dataset_index, c.text) if req.attribution else None
        choices.append(
            Choice(text=text, index=index, finish_reason=FINISH[c.finish_reason], attribution=spans)
        )
    prompt_tokens = sum(len(ids) for _, _, ids, _ in jobs)
    usage = Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )
    return Completion(**meta, choices=choices, usage=usage)


async def _stream(
    service: CompletionService, jobs: list, meta: dict, echo: list[str] | None
) -> AsyncIterator[str]:
    # choices stream one after another; each event carries its choice's index, as OpenAI's do
    try:
        for index, p_index, _, handle in jobs:
            if echo is not None:
                yield _event(meta, index, echo[p_index], None)
            async for piece in service.pieces(handle):
                reason = FINISH[piece.finish_reason] if piece.finish_reason else None
                if piece.text or reason:
                    yield _event(meta, index, piece.text, reason)
        yield "data: [DONE]\n\n"
    finally:
        for _, _, _, handle in jobs:
            handle.cancel()


def _event(meta: dict, index: int, text: str, reason: str | None) -> str:
    chunk = {
        **meta,
        "object": "text_completion",
        "choices": [{"text": text, "index": index, "logprobs": None, "finish_reason": reason}],
    }
    return f"data: {json.dumps(chunk)}\n\n"


router = APIRouter(prefix="/v1", tags=["OpenAI"])


@router.post("/completions", response_model=Completion, response_model_exclude_none=True)
async def completions_route(req: CompletionRequest, request: Request) -> Completion | StreamingResponse:
    """Complete `prompt`; with `suffix`, fill in the middle between them."""
    out = await completions(request.app.state.service, req, request.app.state.index)
    return out if isinstance(out, Completion) else sse(out)


@router.get("/models")
async def models_route(request: Request) -> dict:
    s = request.app.state.service
    return {
        "object": "list",
        "data": [{"id": s.model_id, "object": "model", "created": 0, "owned_by": "stackcoder"}],
    }
