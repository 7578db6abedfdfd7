"""The HTTP app of a speech recognizer: POST /transcribe, /health, /metadata.

A recording comes as the request body (Content-Type audio/wav, audio/flac, audio/ogg or
application/octet-stream) or as file fields of a multipart/form-data form (one transcript per
file, in order). The predict server's safe defaults hold: a bearer token, the body size limit
(413 before the body is read), at most `max_rows` files, a time limit per request (504). A
request that carries no sound gets a 4xx naming the problem, never a 500: 415 for another
content type, 422 for an empty, corrupt or non-audio upload.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from megalith.errors import DataError
from megalith.serving.app import ServeSettings, _bearer, _BodyLimit, _validation_error

AUDIO_TYPES = (
    "audio/wav",
    "audio/x-wav",
    "audio/wave",
    "audio/vnd.wave",
    "audio/flac",
    "audio/x-flac",
    "audio/ogg",
    "application/octet-stream",
)
"""Content types of a raw recording body."""


class Transcribes(Protocol):
    """A speech recognizer run (PyTorch) or its exported bundle (ONNX Runtime)."""

    def transcribe(
        self, recordings: Sequence[Any], *, names: Sequence[str] | None = None
    ) -> list[str]: ...


def build_transcribe_app(
    recognizer: Transcribes, settings: ServeSettings, metadata: dict[str, Any]
) -> FastAPI:
    """A FastAPI app transcribing uploads with `recognizer` under `settings`' limits;
    `metadata` (the backend's) is answered at /metadata with the task and limits added."""
    app = FastAPI(
        title="Megalith speech recognition server",
        dependencies=[Depends(_bearer(settings.token))],
    )
    app.add_middleware(_BodyLimit, limit=settings.max_body_bytes)
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    described = {
        **metadata,
        "task": "transcribe",
        "accepts": [*AUDIO_TYPES, "multipart/form-data"],
        "max_body_bytes": settings.max_body_bytes,
        "max_files": settings.max_rows,
    }

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "backend": metadata.get("backend")}

    @app.get("/metadata")
    async def describe() -> dict[str, Any]:
        return described

    @app.post("/transcribe", summary="Transcribe WAV / FLAC / OGG recordings")
    async def transcribe(request: Request) -> JSONResponse:
        names, recordings = await _uploads(request, settings.max_rows)
        try:
            texts = await asyncio.wait_for(
                run_in_threadpool(recognizer.transcribe, recordings, names=names),
                settings.timeout_s,
            )
        except TimeoutError:
            raise HTTPException(
                504, f"no transcript within the time limit ({settings.timeout_s:g} s)"
            ) from None
        except DataError as error:
            raise HTTPException(422, str(error)) from None
        answers = [{"file": name, "text": text} for name, text in zip(names, texts, strict=True)]
        return JSONResponse({"transcripts": answers})

    return app


async def _uploads(request: Request, max_files: int) -> tuple[list[str], list[bytes]]:
    """(names, bytes) of the request's recordings: its body, or its form's files.

    Raises:
        HTTPException: 415 another content type; 422 no file, too many or an empty one.
    """
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in AUDIO_TYPES:
        named = [("body", await request.body())]
    elif kind == "multipart/form-data":
        named = await _form_files(request, max_files)
    else:
        raise HTTPException(
            415,
            f"Content-Type {kind or '(none)'}: send a WAV, FLAC or OGG recording as the body "
            "(Content-Type audio/wav, audio/flac or audio/ogg) or as a file field of a "
            "multipart/form-data form",
        )
    for name, data in named:
        if not data:
            raise HTTPException(422, f"{name}: the upload is empty; send a recording")
    return [name for name, _ in named], [data for _, data in named]


async def _form_files(request: Request, max_files: int) -> list[tuple[str, bytes]]:
    try:
        form = await request.form(max_files=max_files, max_fields=max_files)
    except StarletteHTTPException as error:  # a malformed form, or too many parts
        raise HTTPException(422, f"multipart form: {error.detail}") from None
    files = [(key, value) for key, value in form.multi_items() if isinstance(value, UploadFile)]
    if not files:
        raise HTTPException(
            422, "multipart form: no file field; send each recording as a file (e.g. 'file')"
        )
    named = []
    for key, upload in files:
        named.append(
            (f"{key} ({upload.filename})" if upload.filename else key, await upload.read())
        )
    await form.close()
    return named
