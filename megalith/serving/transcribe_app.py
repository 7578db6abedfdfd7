"""The HTTP app of a speech recognizer: POST /transcribe, /health, /metadata.

A recording comes as the request body (Content-Type audio/wav, audio/flac, audio/ogg, audio/mpeg
... whatever this machine's libsndfile reads, or application/octet-stream) or as file fields of a
multipart/form-data form (one transcript per file, in order). The predict server's safe defaults
hold: a bearer token, the body size limit (413 before the body is read), at most `max_rows` files,
a time limit per request (504; the worker stops before its next window). A recording whose header
declares more than `max_audio_seconds` is refused with 413 before it is decoded. A request that
carries no sound gets a 4xx naming the problem, never a 500: 415 for another content type (the
answer lists those taken), 422 for an empty, corrupt or non-audio upload.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from megalith.errors import DataError
from megalith.runtime.transcription import TranscriptionStopped
from megalith.serving.app import ServeSettings, _bearer, _BodyLimit, _validation_error
from megalith.serving.sound_uploads import (
    audio_content_types,
    check_durations,
    refuse_content_type,
)


class Transcribes(Protocol):
    """A speech recognizer run (PyTorch) or its exported bundle (ONNX Runtime)."""

    def transcribe(
        self,
        recordings: Sequence[Any],
        *,
        names: Sequence[str] | None = None,
        stop: threading.Event | None = None,
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
        "accepts": [*audio_content_types(), "multipart/form-data"],
        "max_body_bytes": settings.max_body_bytes,
        "max_audio_seconds": settings.max_audio_seconds,
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
        check_durations(list(zip(names, recordings, strict=True)), settings.max_audio_seconds)
        stop = threading.Event()  # set at the time limit: the worker ends before its next window
        timer = asyncio.get_running_loop().call_later(settings.timeout_s, stop.set)
        try:
            texts = await asyncio.wait_for(
                run_in_threadpool(recognizer.transcribe, recordings, names=names, stop=stop),
                settings.timeout_s,
            )
        except (TimeoutError, TranscriptionStopped):
            raise HTTPException(
                504, f"no transcript within the time limit ({settings.timeout_s:g} s)"
            ) from None
        except DataError as error:
            raise HTTPException(422, str(error)) from None
        finally:
            timer.cancel()
        answers = [{"file": name, "text": text} for name, text in zip(names, texts, strict=True)]
        return JSONResponse({"transcripts": answers})

    return app


async def _uploads(request: Request, max_files: int) -> tuple[list[str], list[bytes]]:
    """(names, bytes) of the request's recordings: its body, or its form's files.

    Raises:
        HTTPException: 415 another content type; 422 no file, too many or an empty one.
    """
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in audio_content_types():
        named = [("body", await request.body())]
    elif kind == "multipart/form-data":
        named = await _form_files(request, max_files)
    else:
        raise refuse_content_type(kind)
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
