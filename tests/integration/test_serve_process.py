"""The real server process: start, answer, a bounded soak with malformed requests, SIGTERM under
load, a fuzz of the request schema; and the refusals of `megalith serve` itself."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import yaml
from conftest import make_table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import megalith as mg


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("process")
    make_table(rows=200).to_csv(folder / "table.csv", index=False)
    config = {
        "data": {"source": "table.csv"},
        "inputs": [{"name": "size", "type": "number"}, {"name": "color", "type": "category"}],
        "outputs": [{"name": "label", "type": "category"}],
        "train": {"epochs": 2, "batch_size": 32, "baselines": False},
    }
    (folder / "cfg.yaml").write_text(yaml.safe_dump(config))
    mg.train(folder / "cfg.yaml", output_dir=folder / "run")
    return folder / "run"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(run: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    port = _free_port()
    log = (tmp_path / "server.log").open("w")  # a pipe nobody reads would fill and block it
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "megalith",
            "serve",
            str(run),
            "--port",
            str(port),
            "--max-body-mb",
            "0.05",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail(f"server did not start: {Path(log.name).read_text()[-2000:]}")
    yield process, url, Path(log.name)
    if process.poll() is None:
        process.kill()
        process.wait(10)
    log.close()


def _row(i: int) -> dict[str, Any]:
    return {"size": 5.0 + (i % 11), "color": ["red", "green", "blue"][i % 3]}


def _malformed(i: int) -> tuple[bytes, str]:
    """A bad body of one of five kinds, and the content type it is sent with."""
    kinds = [
        (b'{"rows": [{"size": 1.0, "color": ', "application/json"),  # truncated JSON
        (json.dumps({"rows": [{"size": "heavy", "color": "red"}]}).encode(), "application/json"),
        (json.dumps({"rows": [{"size": 1.0}]}).encode(), "application/json"),  # missing field
        (json.dumps({"rows": [_row(0)] * 4000}).encode(), "application/json"),  # oversized
        (b"size=1&color=red", "application/x-www-form-urlencoded"),
    ]
    return kinds[i % len(kinds)]


def test_soak_with_malformed_requests_then_sigterm_loses_nothing(
    run: Path, server: tuple[subprocess.Popen[str], str, Path]
) -> None:
    process, url, log_path = server
    expected = mg.load(run).predict(pd.DataFrame([_row(i) for i in range(33)]))["label"].tolist()
    outcomes: list[tuple[str, int, Any]] = []
    lock = threading.Lock()

    def worker(start: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            for i in range(start, 600, 16):  # 600 requests over 16 threads
                if i % 10 == 7:
                    body, kind = _malformed(i)
                    answer = client.post("/predict", content=body, headers={"content-type": kind})
                    result = ("bad", answer.status_code, answer.json().get("detail"))
                else:
                    answer = client.post("/predict", json={"rows": [_row(i % 33)]})
                    label = answer.json()["predictions"][0]["label"]
                    result = ("good", answer.status_code, (i % 33, label))
                with lock:
                    outcomes.append(result)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(outcomes) == 600
    good = [o for o in outcomes if o[0] == "good"]
    bad = [o for o in outcomes if o[0] == "bad"]
    assert all(status == 200 for _, status, _ in good)
    assert all(label == expected[i] for _, _, (i, label) in good)
    assert all(400 <= status < 500 and detail for _, status, detail in bad), bad[:5]
    assert httpx.get(f"{url}/health").json()["status"] == "ok"
    meta = httpx.get(f"{url}/metadata").json()
    assert meta["batching"]["batches"] <= len(good)

    # SIGTERM while requests are in flight: each one sent is answered, the server exits cleanly
    failures: list[str] = []
    resets: list[str] = []
    answered: list[int] = []

    def hammer() -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            for i in range(200):
                try:
                    answer = client.post("/predict", json={"rows": [_row(i)] * 50})
                except httpx.ConnectError:
                    return  # refused before it was sent: the server had stopped accepting
                except (httpx.ReadError, httpx.RemoteProtocolError) as error:
                    resets.append(repr(error))  # judged below against the server's own log
                    return
                except httpx.TransportError as error:
                    failures.append(repr(error))
                    return
                answered.append(answer.status_code)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(60)
    # uvicorn shuts down gracefully, then re-raises the signal: the exit status says SIGTERM
    assert process.wait(30) in (0, -signal.SIGTERM)
    log = log_path.read_text()
    assert "Finished server process" in log and "Traceback" not in log
    assert not failures, failures[:3]
    # a connection reset while the server closes is TCP's race for a request the server never
    # read (clients retry those); every request the server did answer reached its client
    served = log.count('"POST /predict HTTP/1.1" 200')
    assert served == len(good) + len(answered), (served, len(good), len(answered), resets)
    assert answered and all(status == 200 for status in answered)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=12,
    ),
    st.sampled_from(["size", "color", "rows"]),
)
def test_fuzzed_bodies_never_get_a_5xx(
    server: tuple[subprocess.Popen[str], str, Path], value: Any, key: str
) -> None:
    _, url, _ = server
    bodies = [value, {"rows": value}, {"rows": [value]}, {"rows": [{**_row(1), key: value}]}]
    for body in bodies:
        answer = httpx.post(f"{url}/predict", json=body, timeout=30)
        assert answer.status_code < 500, (body, answer.text)


def test_serve_refuses_an_open_host_without_a_token(run: Path) -> None:
    env = {**os.environ}
    env.pop("MEGALITH_SERVE_TOKEN", None)
    result = subprocess.run(
        [sys.executable, "-m", "megalith", "serve", str(run), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--token" in result.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "megalith", "serve", str(run), "--backend", "onnx"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2 and "megalith export" in missing.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        busy = subprocess.run(
            [sys.executable, "-m", "megalith", "serve", str(run), "--port", port],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert busy.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr
