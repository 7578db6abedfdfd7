"""megalith serve on a speech recognizer: POST /transcribe with a real run (PyTorch) and its
exported bundle (ONNX Runtime) answers the run's own transcripts; bad uploads get a 4xx."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from speech_runs import long_recording, tiny_recognizer

import megalith as mg
from megalith.serving import build_server, load_backend
from megalith.serving.app import ServeSettings

pytestmark = pytest.mark.slow  # trains a recognizer and exports it (about 20 s on 2 busy cores)

WAV = {"Content-Type": "audio/wav"}


@pytest.fixture(scope="module")
def recognizer(tmp_path_factory: pytest.TempPathFactory) -> tuple[mg.Run, list[Path]]:
    return tiny_recognizer(tmp_path_factory)


def client_for(source: Path, backend: str) -> TestClient:
    settings = ServeSettings(max_body_bytes=400_000, max_rows=4, timeout_s=60)
    return TestClient(build_server(load_backend(source, backend), settings))  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_transcribe_answers_the_runs_transcripts(
    recognizer: tuple[mg.Run, list[Path]], backend: str, tmp_path: Path
) -> None:
    run, clips = recognizer
    if backend == "onnx" and not (run.path / "bundle" / "bundle.json").is_file():
        run.export(run.path / "bundle", overwrite=True)
    client = client_for(run.path, backend)
    metadata = client.get("/metadata").json()
    assert metadata["task"] == "transcribe" and metadata["backend"] == backend
    answer = client.post("/transcribe", content=clips[0].read_bytes(), headers=WAV)
    assert answer.status_code == 200, answer.text
    assert answer.json()["transcripts"] == [{"file": "body", "text": run.transcribe(clips[:1])[0]}]
    long = long_recording(clips, tmp_path / "long.wav")  # longer than the model's clip
    files = [("file", (p.name, p.read_bytes(), "audio/wav")) for p in [clips[1], long]]
    answer = client.post("/transcribe", files=files)
    assert answer.status_code == 200, answer.text
    texts = [entry["text"] for entry in answer.json()["transcripts"]]
    assert texts == run.transcribe([clips[1], long]) and all(texts)


def test_bad_uploads_are_a_4xx_from_a_real_run(recognizer: tuple[mg.Run, list[Path]]) -> None:
    run, _ = recognizer
    client = client_for(run.path, "torch")
    corrupt = client.post("/transcribe", content=b"RIFF....WAVEfmt garbage", headers=WAV)
    assert corrupt.status_code == 422 and "cannot be read as audio" in corrupt.json()["detail"]
    empty = client.post("/transcribe", content=b"", headers=WAV)
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]
    json_body = client.post("/transcribe", json={"audio": "one.wav"})
    assert json_body.status_code == 415
    big = client.post("/transcribe", content=b"\0" * 500_000, headers=WAV)
    assert big.status_code == 413
    assert client.post("/predict", json={"rows": []}).status_code == 404  # no predict route
