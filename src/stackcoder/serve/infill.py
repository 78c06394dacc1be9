"""llama.cpp's shape: ``POST /infill`` (llama.cpp ``tools/server`` README). ``input_extra`` — other files
of the repository — become a repository-level prompt as StarCoder2 was trained (recipe.md §2):
``<repo_name>repo<file_sep>a.py\\n…<file_sep>`` and the edited file as a FIM chunk, in the server's
FIM order: ``<fim_prefix><fim_suffix>suffix<fim_middle>path\\nprefix`` (SPM, the default: see
docs/serve.md) or ``<fim_prefix>path\\nprefix<fim_suffix>suffix<fim_middle>`` (PSM).
Two fields are ours: ``repo_name`` and ``filename`` (the file being edited), which llama.cpp lacks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from stackcoder.index.service import DatasetIndex
from stackcoder.serve.engine import Handle
from stackcoder.serve.overlap import AttributionSpan, attribute, require_index
from stackcoder.serve.service import CompletionService, ServeError
from stackcoder.serve.sse import sse


class ExtraFile(BaseModel):
    filename: str = Field(..., max_length=1000)
    text: str


class InfillRequest(BaseModel):
    input_prefix: str = ""
    input_suffix: str = ""
    input_extra: list[ExtraFile] = Field(default_factory=list, max_length=256)
    prompt: str = Field("", description="appended to input_prefix, as llama.cpp does")
    n_predict: int = Field(64, ge=-1, description="-1: this server's max_new_tokens")
    temperature: float = Field(0.8, ge=0, le=100)
    top_k: int = Field(40, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    stop: list[str] = Field(default_factory=list, max_length=16)
    seed: int = Field(-1, description="-1: random")
    stream: bool = False
    repo_name: str = Field("repository", description="ours: the <repo_name> of the repository-level prompt")
    filename: str = Field("untitled", description="ours: the path of the file being edited")
    attribution: bool = Field(
        False, description="ours: also return the spans of content found in the training data (serve --index)"
    )


class InfillResponse(BaseModel):
    content: str
    stop: bool = True
    stop_type: str  # eos, word, limit
    tokens_predicted: int
    tokens_evaluated: int
    model: str
    attribution: list[AttributionSpan] | None = None


STOP_TYPE = {"eos": "eos", "stop": "word", "length": "limit", "timeout": "limit"}


def _prompt(service: CompletionService, req: InfillRequest) -> list[int]:
    prefix = req.input_prefix + req.prompt
    if req.input_extra:
        files = [(f.filename, f.text) for f in req.input_extra]
        return service.repo_prompt(req.repo_name, files, req.filename, prefix, req.input_suffix)
    return service.fim_prompt(prefix, req.input_suffix)


async def infill(
    service: CompletionService, req: InfillRequest, dataset_index: DatasetIndex | None = None
) -> InfillResponse | AsyncIterator[str]:
    """The whole answer, or with ``stream`` its events (the request is started first either way)."""
    if req.attribution:
        if req.stream:
            raise ServeError(422, "attribution is given with whole answers only: ask without streaming")
        require_index(dataset_index)
    n = service.max_new if req.n_predict < 0 else req.n_predict
    params = service.params(
        n, req.temperature, req.top_p, req.top_k, req.stop, None if req.seed < 0 else req.seed
    )
    ids = _prompt(service, req)
    handle = service.start(ids, params)
    if req.stream:
        return _stream(service, handle)
    c = await service.collect(handle)
    return InfillResponse(
        content=c.text,
        stop_type=STOP_TYPE[c.finish_reason],
        tokens_predicted=len(c.token_ids),
        tokens_evaluated=len(ids),
        model=service.model_id,
        attribution=await attribute(dataset_index, c.text) if req.attribution else None,
    )


async def _stream(service: CompletionService, handle: Handle) -> AsyncIterator[str]:
    async for piece in service.pieces(handle):
        event = {"content": piece.text, "stop": piece.finish_reason is not None}
        if piece.finish_reason is not None:
            event["stop_type"] = STOP_TYPE[piece.finish_reason]
        yield f"data: {json.dumps(event)}\n\n"


router = APIRouter(tags=["llama.cpp"])


@router.post("/infill", response_model=InfillResponse, response_model_exclude_none=True)
async def infill_route(req: InfillRequest, request: Request) -> InfillResponse | StreamingResponse:
    """Fill in the middle, with other files of the repository as context (`input_extra`)."""
    out = await infill(request.app.state.service, req, request.app.state.index)
    return out if isinstance(out, InfillResponse) else sse(out)
