"""POST /transcribe over HTTP with a stand-in recognizer that really decodes the upload:
raw bodies and multipart files are transcribed in order; an empty, corrupt, non-audio,
oversized or wrongly typed upload is a 4xx naming the problem, never a 500."""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import soundfile
from fastapi.testclient import TestClient

from megalith.runtime.transcription import read_recordings
from megalith.serving.app import ServeSettings
from megalith.serving.transcribe_app import build_transcribe_app

RATE = 8000
HEADERS = {"Authorization": "Bearer s3cret"}


class Counting:
    """'N samples' per recording, read as a recognizer reads it (so bad audio fails there)."""

    delay = 0.0

    def transcribe(
        self, recordings: Sequence[Any], *, names: Sequence[str] | None = None, stop: Any = None
    ):
        time.sleep(self.delay)
        return [f"{len(w)} samples" for w in read_recordings(recordings, RATE, names)]


def sound(samples: int, format: str = "WAV", rate: int = RATE) -> bytes:
    buffer = io.BytesIO()
    wave = 0.1 * np.sin(np.arange(samples) / 5).astype(np.float32)
    soundfile.write(buffer, wave, rate, format=format)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def recognizer() -> Counting:
    return Counting()


@pytest.fixture(scope="module")
def client(recognizer: Counting) -> TestClient:
    settings = ServeSettings(token="s3cret", max_body_bytes=64_000, max_rows=3, timeout_s=1.0)
    app = build_transcribe_app(recognizer, settings, {"backend": "test"})
    return TestClient(app)


def test_a_raw_wav_or_flac_body_is_transcribed(client: TestClient) -> None:
    answer = client.post(
        "/transcribe", content=sound(4000), headers=HEADERS | {"Content-Type": "audio/wav"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"transcripts": [{"file": "body", "text": "4000 samples"}]}
    # a FLAC at 16 kHz is resampled to the model's 8 kHz
    flac = sound(4000, "FLAC", rate=16000)
    answer = client.post(
        "/transcribe", content=flac, headers=HEADERS | {"Content-Type": "audio/flac"}
    )
    assert answer.json()["transcripts"][0]["text"] == "2000 samples"


def test_multipart_files_are_transcribed_in_order(client: TestClient) -> None:
    files = [
        ("file", ("a.wav", sound(800), "audio/wav")),
        ("file", ("b.flac", sound(1600, "FLAC"), "audio/flac")),
    ]
    answer = client.post("/transcribe", files=files, headers=HEADERS)
    assert answer.status_code == 200, answer.text
    assert answer.json()["transcripts"] == [
        {"file": "file (a.wav)", "text": "800 samples"},
        {"file": "file (b.flac)", "text": "1600 samples"},
    ]
    metadata = client.get("/metadata", headers=HEADERS).json()
    assert metadata["task"] == "transcribe" and metadata["max_files"] == 3


@pytest.mark.parametrize(
    ("content", "kind", "status", "says"),
    [
        (b"", "audio/wav", 422, "body: the upload is empty"),
        (b"RIFF\x00\x00garbage that is no wave", "audio/wav", 422, "body: cannot be read as audio"),
        (b'{"audio": "hello"}', "application/json", 415, "Content-Type application/json"),
        (b"hello", "text/plain", 415, "audio/wav, audio/x-wav"),
        (b"x" * 70_000, "audio/wav", 413, "over the limit of 64000 bytes"),
        (sound(2000, rate=1), "audio/wav", 422, "body: sampled at 1 Hz"),
    ],
)
def test_bad_uploads_get_a_4xx_naming_the_problem(
    client: TestClient, content: bytes, kind: str, status: int, says: str
) -> None:
    answer = client.post("/transcribe", content=content, headers=HEADERS | {"Content-Type": kind})
    assert answer.status_code == status, answer.text
    assert says in answer.json()["detail"]


def test_bad_forms_get_a_4xx(client: TestClient) -> None:
    no_file = client.post("/transcribe", files={"text": (None, "hello")}, headers=HEADERS)
    assert no_file.status_code == 422 and "no file field" in no_file.json()["detail"]
    urlencoded = client.post("/transcribe", data={"text": "hello"}, headers=HEADERS)
    assert urlencoded.status_code == 415
    corrupt = client.post(
        "/transcribe", files=[("file", ("x.wav", b"not audio", "audio/wav"))], headers=HEADERS
    )
    assert corrupt.status_code == 422
    assert "file (x.wav): cannot be read as audio" in corrupt.json()["detail"]
    empty = client.post(
        "/transcribe", files=[("file", ("e.wav", b"", "audio/wav"))], headers=HEADERS
    )
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]
    many = [("file", (f"{i}.wav", sound(100), "audio/wav")) for i in range(4)]
    too_many = client.post("/transcribe", files=many, headers=HEADERS)
    assert too_many.status_code == 422 and "multipart form" in too_many.json()["detail"]


def test_the_token_and_the_time_limit_hold(client: TestClient, recognizer: Counting) -> None:
    wav = {"Content-Type": "audio/wav"}
    assert client.post("/transcribe", content=sound(800), headers=wav).status_code == 401
    recognizer.delay = 1.5
    try:
        slow = client.post("/transcribe", content=sound(800), headers=HEADERS | wav)
    finally:
        recognizer.delay = 0.0
    assert slow.status_code == 504 and "time limit" in slow.json()["detail"]
