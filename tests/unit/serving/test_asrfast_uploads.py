"""POST /transcribe takes what libsndfile reads (MP3 too), refuses a recording whose header
declares more audio than the limit before decoding it, and a timed-out request stops its worker
before the next window."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import soundfile
from fastapi.testclient import TestClient

from megalith.runtime.transcription import (
    SpeechWindows,
    read_recordings,
    transcribe_waves,
)
from megalith.serving.app import ServeSettings
from megalith.serving.sound_uploads import audio_content_types
from megalith.serving.transcribe_app import build_transcribe_app

RATE = 8000


def sound(seconds: float, format: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    wave = 0.1 * np.sin(np.arange(int(seconds * RATE)) / 5).astype(np.float32)
    soundfile.write(buffer, wave, RATE, format=format)
    return buffer.getvalue()


class Windowed:
    """Reads each recording and runs one slow 'forward' per 0.1 s window, as a recognizer
    does (megalith.runtime.transcription), counting the windows it ran."""

    def __init__(self, seconds_per_window: float = 0.0) -> None:
        self.pause, self.windows, self.done = seconds_per_window, 0, threading.Event()

    def forward(self, windows: np.ndarray) -> np.ndarray:
        time.sleep(self.pause * len(windows))
        self.windows += len(windows)
        return np.zeros((len(windows), 2, 3), dtype=np.float32)

    def transcribe(
        self, recordings: Sequence[Any], *, names: Sequence[str] | None = None, stop: Any = None
    ) -> list[str]:
        try:
            waves = read_recordings(recordings, RATE, names)
            windows = SpeechWindows.of(RATE, 800, 400, 0.0)
            ids = transcribe_waves(waves, self.forward, windows, lambda s: [len(s)], 64, stop)
            return [f"{row[0]} frames" for row in ids]
        finally:
            self.done.set()


def client_for(recognizer: Windowed, **settings: Any) -> TestClient:
    app = build_transcribe_app(recognizer, ServeSettings(**settings), {"backend": "test"})
    return TestClient(app)


def test_what_libsndfile_reads_is_taken_and_the_rest_refused_with_the_list() -> None:
    assert "MP3" in soundfile.available_formats()  # libsndfile >= 1.1
    assert "audio/mpeg" in audio_content_types()
    client = client_for(Windowed())
    mp3 = client.post(
        "/transcribe", content=sound(1.0, "MP3"), headers={"Content-Type": "audio/mpeg"}
    )
    assert mp3.status_code == 200, mp3.text
    assert mp3.json()["transcripts"][0]["text"].endswith("frames")
    refused = client.post("/transcribe", content=b"x", headers={"Content-Type": "video/mp4"})
    assert refused.status_code == 415
    assert "audio/mpeg" in refused.json()["detail"] and "audio/flac" in refused.json()["detail"]
    assert "audio/mpeg" in client.get("/metadata").json()["accepts"]


def test_a_recording_longer_than_the_limit_is_refused_before_it_is_decoded() -> None:
    recognizer = Windowed()
    client = client_for(recognizer, max_audio_seconds=10.0)
    flac = sound(30.0, "FLAC")  # 30 s of a sine compress to a few kB: within the byte limit
    assert len(flac) < ServeSettings().max_body_bytes
    answer = client.post("/transcribe", content=flac, headers={"Content-Type": "audio/flac"})
    assert answer.status_code == 413, answer.text
    assert "body: 30 seconds of audio" in answer.json()["detail"]
    assert "at most 10 s" in answer.json()["detail"]
    assert recognizer.windows == 0 and not recognizer.done.is_set()  # never decoded
    fits = client.post(
        "/transcribe", content=sound(5.0, "FLAC"), headers={"Content-Type": "audio/flac"}
    )
    assert fits.status_code == 200


def test_a_timed_out_request_stops_its_worker_before_the_next_window() -> None:
    recognizer = Windowed(seconds_per_window=0.05)  # 8 windows per pass: 0.4 s a pass
    client = client_for(recognizer, timeout_s=0.5)
    started = time.perf_counter()
    answer = client.post("/transcribe", content=sound(60.0), headers={"Content-Type": "audio/wav"})
    assert answer.status_code == 504 and "time limit" in answer.json()["detail"]
    assert recognizer.done.wait(5.0)  # the worker ended ...
    assert recognizer.windows <= 16  # ... within a pass of the limit, not after 600 windows
    assert time.perf_counter() - started < 5.0
