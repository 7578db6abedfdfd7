"""The HTTP app: /predict (dynamically batched), /generate, /health, /metadata.

Safe by default: a bearer token when one is set (required off loopback), a body size limit
checked before the body is read, a row limit per request, a time limit per request (504), a
bounded queue (503), image pixel limits checked before decoding, paths only under an allowed
folder, and no request body in any log line.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from megalith.errors import DataError
from megalith.serving.answers import json_rows
from megalith.serving.backend import Backend
from megalith.serving.batcher import DynamicBatcher, QueueFull
from megalith.serving.forward import BatchForward
from megalith.serving.images import ImageDecoder
from megalith.serving.schema import GenerateRequest, predict_request, row_model


@dataclass(frozen=True)
class ServeSettings:
    """Limits and batching of one server (the `megalith serve` flags)."""

    max_batch_size: int = 64
    """Most rows in one forward pass."""
    max_wait_ms: float = 0.0
    """How long a batch of several requests waits for more (0: never)."""
    batching: bool = True
    """False: one forward pass per request."""
    max_body_bytes: int = 4 * 1024 * 1024
    """Larger request bodies get a 413 before they are read."""
    max_rows: int = 1024
    """Most rows in one request."""
    timeout_s: float = 30.0
    """A request not answered in this time gets a 504."""
    max_queue: int = 1024
    """Most requests waiting for the model; more get a 503."""
    token: str | None = None
    """When set, every request needs `Authorization: Bearer <token>`."""
    allow_paths: Path | None = None
    """Image fields may name files under this folder (else they must be base64)."""
    max_audio_seconds: float = 600.0
    """Longest recording POST /transcribe decodes, read from its header first (413 above)."""


def build_app(backend: Backend, settings: ServeSettings) -> FastAPI:
    """A FastAPI app serving `backend` with `settings`.

    Audio fields carry the sound file's bytes, base64-encoded (never a path on the server;
    megalith.serving.audio_uploads); a speech recognizer is served as POST /transcribe instead
    (megalith.serving.build_server).
    """
    images = ImageDecoder(backend.predictor.preprocessor, settings.allow_paths)
    forward = BatchForward(backend, settings.allow_paths)

    def predict_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One batch, in the worker thread: its frame, predictions and JSON rows, built once."""
        return json_rows(forward(images.frame(records)))

    batcher: DynamicBatcher[dict[str, Any], dict[str, Any]] = DynamicBatcher(
        predict_rows,
        max_batch_size=settings.max_batch_size,
        max_wait_ms=settings.max_wait_ms,
        max_queue=settings.max_queue,
        enabled=settings.batching,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        yield
        await batcher.stop()  # in-flight requests finish first

    app = FastAPI(
        title="Megalith model server",
        version=backend.metadata()["versions"].get("megalith", "unknown"),
        lifespan=lifespan,
        dependencies=[Depends(_bearer(settings.token))],
    )
    app.state.batcher = batcher
    app.add_middleware(_BodyLimit, limit=settings.max_body_bytes)
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    metadata = backend.metadata()

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "backend": backend.name}

    @app.get("/metadata")
    async def describe() -> dict[str, Any]:
        return {**metadata, "batching": _batching(settings, batcher)}

    if backend.language_model:
        _add_generate(app, backend)
    else:
        _add_predict(app, backend, settings, batcher, images)
    return app


def _add_predict(
    app: FastAPI,
    backend: Backend,
    settings: ServeSettings,
    batcher: DynamicBatcher[dict[str, Any], dict[str, Any]],
    images: ImageDecoder,
) -> None:
    row = row_model(backend.input_columns(), image_paths=settings.allow_paths is not None)
    request_model = predict_request(row, settings.max_rows)

    async def predict(body: request_model) -> JSONResponse:  # type: ignore[valid-type]
        records = [r.model_dump(by_alias=True) for r in body.rows]  # type: ignore[attr-defined]
        try:
            if images.limits or images.audio.max_seconds:  # base64 decodes off the event loop
                records = await run_in_threadpool(images.decode, records)
            predicted = await asyncio.wait_for(batcher.submit(records), settings.timeout_s)
        except QueueFull:
            raise HTTPException(503, "the server is busy: too many requests waiting") from None
        except TimeoutError:
            raise HTTPException(
                504, f"no prediction within the time limit ({settings.timeout_s:g} s)"
            ) from None
        except DataError as error:
            raise HTTPException(422, _request_rows(str(error))) from None
        # rows of plain values already: JSONResponse renders them without FastAPI's encoder
        return JSONResponse({"predictions": predicted})

    predict.__annotations__["body"] = request_model
    app.post("/predict", summary="Predict rows (the same columns `megalith predict` writes)")(
        predict
    )


def _add_generate(app: FastAPI, backend: Backend) -> None:
    from megalith.generation import Sampling

    run, bundle = backend.run, backend.predictor

    @app.post("/generate", summary="Stream text continuing the prompt (language models)")
    async def generate(body: GenerateRequest) -> StreamingResponse:
        if run is not None:  # PyTorch: piece by piece from the KV cache
            sampling = Sampling(temperature=body.temperature, top_k=body.top_k, top_p=body.top_p)
            pieces = run.generate(
                body.prompt, max_new_tokens=body.max_new_tokens, sampling=sampling, seed=body.seed
            )
        elif body.top_p is not None:
            raise HTTPException(
                422, "top_p: not supported by the ONNX backend; use --backend torch"
            )
        else:  # an exported language model: the whole continuation at once
            pieces = _bundle_text(bundle, body)

        def stream() -> Any:
            yield from pieces  # starlette runs a plain iterator in its thread pool

        return StreamingResponse(stream(), media_type="text/plain; charset=utf-8")


def _bundle_text(bundle: Any, body: GenerateRequest) -> Any:
    yield bundle.generate(
        body.prompt,
        max_new_tokens=body.max_new_tokens,
        temperature=body.temperature,
        top_k=body.top_k,
        seed=body.seed,
    )


def _bearer(token: str | None) -> Callable[[Request], Awaitable[None]]:
    async def check(request: Request) -> None:
        if token is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip(), token):
            raise HTTPException(
                401,
                "missing or wrong token: send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return check


async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    """422 naming each wrong field as `rows.3.age`, without echoing the values sent."""
    problems = []
    for item in error.errors():
        if item.get("type") == "json_invalid":  # its location is a character offset
            at = item.get("loc", ("body", "?"))[-1]
            problems.append({"field": "body", "problem": f"invalid JSON at character {at}"})
            continue
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
        problems.append({"field": where or "body", "problem": item.get("msg", "invalid")})
    first = problems[0] if problems else {"field": "body", "problem": "invalid"}
    detail = f"{first['field']}: {first['problem']}"
    return JSONResponse({"detail": detail, "errors": problems[:20]}, status_code=422)


def _request_rows(message: str) -> str:
    """DataError messages name 'data frame' as the source; in a request it is the body."""
    return message.replace("data frame", "request", 1)


def _batching(settings: ServeSettings, batcher: DynamicBatcher[Any, Any]) -> dict[str, Any]:
    return {
        "enabled": settings.batching,
        "max_batch_size": settings.max_batch_size,
        "max_wait_ms": settings.max_wait_ms,
        "batches": batcher.stats.batches,
        "mean_batch_rows": round(batcher.stats.mean_batch_rows, 2),
    }


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class _TooLarge(Exception):
    pass


class _BodyLimit:
    """ASGI middleware: a body over `limit` bytes gets a 413, checked on Content-Length before
    anything is read and counted while a chunked body streams in."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _too_large(send, self.limit)
            return
        seen, started = 0, False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await _too_large(send, self.limit)


async def _too_large(send: Send, limit: int) -> None:
    body = f'{{"detail": "request body over the limit of {limit} bytes"}}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})
