"""Text Generation Inference's shape: ``POST /generate``, ``POST /generate_stream``, ``POST /``
(TGI's compat route, what ``huggingface_hub.InferenceClient.text_generation`` posts to), ``GET /info``,
``GET /health``. Schemas follow TGI's OpenAPI (huggingface/text-generation-inference, ``docs/openapi.json``);
parameters TGI has and we do not use (``repetition_penalty``, ``watermark``, …) are accepted and ignored."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from stackcoder import __version__
from stackcoder.index.service import DatasetIndex
from stackcoder.model.generate import Collected, SamplingParams
from stackcoder.serve.overlap import AttributionSpan, attribute, require_index
from stackcoder.serve.service import CompletionService, Result, ServeError
from stackcoder.serve.sse import sse

# TGI's finish reasons
FINISH = {"eos": "eos_token", "stop": "stop_sequence", "length": "length", "timeout": "length"}


class GenerateParameters(BaseModel):
    max_new_tokens: int | None = Field(20, ge=0, description="TGI's default: 20")
    temperature: float | None = Field(None, ge=0, le=100)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0)
    do_sample: bool = False
    seed: int | None = Field(None, ge=0)
    stop: list[str] | None = Field(None, max_length=16)
    return_full_text: bool | None = False
    details: bool = False
    decoder_input_details: bool = False
    best_of: int | None = Field(None, ge=1, le=1)
    repetition_penalty: float | None = None
    frequency_penalty: float | None = None
    truncate: int | None = None
    typical_p: float | None = None
    watermark: bool | None = False
    top_n_tokens: int | None = None
    adapter_id: str | None = None
    grammar: dict | None = None
    attribution: bool = Field(
        False,
        description="stackcoder: also return the spans of generated_text found in the training data, "
        "with their sources and licenses (needs `serve --index`)",
    )


class GenerateRequest(BaseModel):
    inputs: str = Field(
        ..., min_length=1, description="the prompt (for FIM: <fim_prefix>…<fim_suffix>…<fim_middle>)"
    )
    parameters: GenerateParameters = Field(default_factory=GenerateParameters)
    stream: bool = False


class Token(BaseModel):
    id: int
    text: str
    logprob: float | None
    special: bool


class Details(BaseModel):
    finish_reason: str
    generated_tokens: int
    seed: int | None
    prefill: list[Token] = []
    tokens: list[Token] = []


class GenerateResponse(BaseModel):
    generated_text: str
    details: Details | None = None
    attribution: list[AttributionSpan] | None = Field(
        None, description="offsets in the generated text (without the prompt, even with return_full_text)"
    )


class StreamResponse(BaseModel):
    index: int
    token: Token
    generated_text: str | None = None
    details: Details | None = None


class Info(BaseModel):
    model_id: str
    model_dtype: str
    model_device_type: str
    model_pipeline_tag: str = "text-generation"
    max_concurrent_requests: int
    max_best_of: int = 1
    max_stop_sequences: int = 16
    max_input_tokens: int
    max_total_tokens: int
    max_batch_size: int
    version: str
    router: str = "stackcoder"


def _sampling(service: CompletionService, p: GenerateParameters) -> SamplingParams:
    # TGI samples when asked to, or when any warper is set (temperature != 1, top_p < 1, top_k > 0)
    warpers = (p.temperature not in (None, 1.0)) or (p.top_p not in (None, 1.0)) or bool(p.top_k)
    sampling = p.do_sample or warpers
    temperature = (p.temperature if p.temperature is not None else 1.0) if sampling else 0.0
    return service.params(p.max_new_tokens or 0, temperature, p.top_p, p.top_k, p.stop, p.seed, sampling)


def _token(token_id: int, text: str, logprob: float, special: bool = False) -> Token:
    """``special``: an end token (only a stream's last piece can be one; returned tokens never are)."""
    return Token(id=token_id, text=text, logprob=None if logprob != logprob else logprob, special=special)


async def generate(
    service: CompletionService, req: GenerateRequest, index: DatasetIndex | None = None
) -> GenerateResponse:
    if req.parameters.attribution:
        require_index(index)
    params = _sampling(service, req.parameters)
    result: Result = await service.complete(service.encode(req.inputs), params)
    text = (req.inputs if req.parameters.return_full_text else "") + result.text
    details = None
    if req.parameters.details:
        tokens = [
            _token(i, service.tokenizer.decode([i]), lp)
            for i, lp in zip(result.token_ids, result.logprobs, strict=True)
        ]
        details = Details(
            finish_reason=FINISH[result.finish_reason],
            generated_tokens=len(result.token_ids),
            seed=req.parameters.seed,
            tokens=tokens,
        )
    spans = await attribute(index, result.text) if req.parameters.attribution else None
    return GenerateResponse(generated_text=text, details=details, attribution=spans)


def generate_stream(service: CompletionService, req: GenerateRequest) -> AsyncIterator[str]:
    """The request's events; it is started here, so its errors are still a 4xx/503, not an event."""
    if req.parameters.attribution:
        raise ServeError(422, "attribution is given with whole answers only: ask without streaming")
    params = _sampling(service, req.parameters)
    handle = service.start(service.encode(req.inputs), params)

    async def events() -> AsyncIterator[str]:
        so_far = Collected()
        async for piece in service.pieces(handle):
            so_far.add(piece)
            n = len(so_far.token_ids)
            out = StreamResponse(
                index=n, token=_token(piece.token_id, piece.text, piece.logprob, piece.finish_reason == "eos")
            )
            if piece.finish_reason is not None:
                full = so_far.text
                out.generated_text = (req.inputs + full) if req.parameters.return_full_text else full
                out.details = Details(
                    finish_reason=FINISH[piece.finish_reason], generated_tokens=n, seed=req.parameters.seed
                )
            yield f"data:{out.model_dump_json()}\n\n"

    return events()


router = APIRouter(tags=["TGI"])


def _service(request: Request) -> CompletionService:
    return request.app.state.service


@router.post("/generate", response_model=GenerateResponse, response_model_exclude_none=True)
async def generate_route(req: GenerateRequest, request: Request) -> GenerateResponse:
    """Generate text (TGI). llm-ls posts FIM prompts here."""
    return await generate(_service(request), req, request.app.state.index)


@router.post("/generate_stream", response_class=StreamingResponse)
async def generate_stream_route(req: GenerateRequest, request: Request) -> StreamingResponse:
    """Generate text, one server-sent event per token (TGI's event shape)."""
    return sse(generate_stream(_service(request), req))


@router.post("/", response_model=list[GenerateResponse], response_model_exclude_none=True)
async def compat_route(req: GenerateRequest, request: Request) -> list[GenerateResponse] | StreamingResponse:
    """TGI's compat route: a stream when `stream` is true, else a one-element list."""
    if req.stream:
        return sse(generate_stream(_service(request), req))
    return [await generate(_service(request), req, request.app.state.index)]


@router.get("/info", response_model=Info)
async def info_route(request: Request) -> Info:
    s = _service(request)
    p = next(s.model.parameters())
    return Info(
        model_id=s.model_id,
        model_dtype=str(p.dtype).removeprefix("torch."),
        model_device_type=p.device.type,
        max_concurrent_requests=s.config.max_batch + s.config.max_queue,
        max_input_tokens=s.max_input,
        max_total_tokens=s.context,
        max_batch_size=s.config.max_batch,
        version=__version__,
    )


@router.get("/health")
async def health_route(request: Request) -> dict:
    """200 when the model is loaded and the engine thread is alive."""
    s = _service(request)
    return {"status": "ok" if s.engine.thread.is_alive() else "engine stopped", **s.engine.load}
