"""``create_app``: the FastAPI application — the three API shapes on one port, the playground at
``/``, a bearer token when configured, CORS when asked for, and every error as JSON with a 4xx/5xx
status and a message (never a traceback)."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel

from stackcoder import __version__
from stackcoder.serve import infill, openai, overlap, tgi
from stackcoder.serve.config import ServeConfig
from stackcoder.serve.service import CompletionService, ServeError

# reachable without the API key: the page itself (it asks for the key), liveness, the schema
OPEN_PATHS = {"/", "/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


class ErrorBody(BaseModel):
    error: str
    error_type: str


ERRORS = {
    401: {"model": ErrorBody, "description": "missing or wrong API key"},
    404: {"model": ErrorBody, "description": "no dataset index on this server (for /overlap, /search)"},
    413: {"model": ErrorBody, "description": "the prompt is longer than the server accepts"},
    422: {"model": ErrorBody, "description": "invalid request (types, limits, empty prompt)"},
    503: {"model": ErrorBody, "description": "the queue is full: retry after the Retry-After seconds"},
}


def error(status: int, message: str, kind: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "error_type": kind}, status_code=status, headers=headers)


def create_app(config: ServeConfig, service: CompletionService | None = None) -> FastAPI:
    """The app for ``config``; the model is loaded here, so a bad checkpoint fails before serving."""
    service = service or CompletionService(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        service.close()

    app = FastAPI(title="stackcoder", version=__version__, lifespan=lifespan)
    app.state.service = service
    app.state.index = None
    if config.index:
        from stackcoder.index.service import DatasetIndex

        # a bad index (or threshold) fails before serving, as a bad model does
        app.state.index = DatasetIndex(config.index, max_chance=config.index_max_chance)
    for module in (tgi, openai, infill, overlap):
        app.include_router(module.router, responses=ERRORS)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def playground() -> HTMLResponse:
        page = resources.files("stackcoder.serve").joinpath("static/playground.html").read_text("utf-8")
        return HTMLResponse(page)

    @app.exception_handler(ServeError)
    async def serve_error(request: Request, e: ServeError) -> JSONResponse:
        headers = {"Retry-After": str(e.retry_after)} if e.retry_after else None
        kind = {404: "not_found", 413: "validation", 422: "validation", 503: "overloaded"}.get(
            e.status, "generation"
        )
        return error(e.status, e.message, kind, headers)

    @app.exception_handler(RuntimeError)
    async def failed(request: Request, e: RuntimeError) -> JSONResponse:  # the engine failed this request
        return error(500, str(e), "generation")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = (
            f"{where}: {first.get('msg', 'invalid request')}"
            if where
            else first.get("msg", "invalid request")
        )
        return error(422, message, "validation")

    if config.api_key:
        key = config.api_key.encode()

        @app.middleware("http")
        async def bearer(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
            if request.method == "OPTIONS" or request.url.path in OPEN_PATHS:
                return await call_next(request)
            given = request.headers.get("authorization", "")
            token = given[7:].encode() if given.lower().startswith("bearer ") else b""
            if not hmac.compare_digest(token, key):
                return error(
                    401,
                    "missing or wrong API key (Authorization: Bearer KEY)",
                    "authentication",
                    {"WWW-Authenticate": "Bearer"},
                )
            return await call_next(request)

    if config.cors_origins:  # added last: the outermost layer, so even a 401 carries CORS headers
        app.add_middleware(
            CORSMiddleware, allow_origins=config.cors_origins, allow_methods=["*"], allow_headers=["*"]
        )
    return app
