"""`megalith serve` under load against a hand-written FastAPI app, on loopback.

For each model (the digits CNN, a 2-layer Transformer text classifier) it trains a small run,
starts each server in its own process — the reference app (benchmarks/serve_reference.py: one
forward pass per request), `megalith serve` with PyTorch and batching off, with batching on,
and on the exported ONNX bundle with batching on — and sends one-row requests from an async
client at concurrency 1, 8 and 32, bounded in requests and seconds. The servers run side by
side and take turns, `--rounds` times, so that other work on a shared machine, which comes
and goes, falls on all of them. Prints one JSON object per (model, server, concurrency), the
median over rounds: requests/s, p50 / p95 latency in ms, the server's and the client's CPU
milliseconds per request (time-slicing by other processes does not inflate these), errors,
answers that differ from `Run.predict`, mean rows per forward pass; then the ratios against
the reference measured in the same run.

Each concurrent worker has its own httpx client and connection: one shared AsyncClient with
32 connections spent 3.7 ms of CPU per request in its pool bookkeeping (1.2 ms at
concurrency 1; httpcore scans every connection on each request event, encode/httpx#3215),
so on 2 cores the client, not the server, set the pace and hid the difference between
servers.

    python benchmarks/serve_load.py [--seconds 8] [--rounds 3] [--only digits-cnn]
    python benchmarks/serve_load.py --tiny     # a few requests: checks the code runs
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

import megalith as mg

REPO = Path(__file__).resolve().parents[1]
from loop_overhead import WORKLOADS as TRAINED  # noqa: E402  # the same models as the loop's

EPOCHS = {"digits-cnn": 5, "text-transformer": 3}
"""Epochs each served model trains for (its config is loop_overhead.py's)."""
WORKLOADS: dict[str, Any] = {name: TRAINED[name] for name in EPOCHS}
SERVERS = ("reference", "megalith-unbatched", "megalith-batched", "megalith-onnx-batched")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="Most seconds per level.")
    parser.add_argument("--requests", type=int, default=4000, help="Most requests per level.")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--only", nargs="+", choices=sorted(WORKLOADS), default=sorted(WORKLOADS))
    parser.add_argument("--rounds", type=int, default=3, help="Turns of every server.")
    parser.add_argument("--tiny", action="store_true", help="A few requests, 1 epoch.")
    args = parser.parse_args()
    if args.tiny:
        args.seconds, args.requests, args.concurrency, args.rounds = 2.0, 20, [1, 4], 1
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.only:
            run = _train(name, Path(folder), args.tiny)
            bodies, expected = _requests(run)
            with contextlib.ExitStack() as stack:
                servers = [stack.enter_context(_Server(kind, run)) for kind in SERVERS]
                for level in args.concurrency:
                    turns: dict[str, list[dict[str, Any]]] = {kind: [] for kind in SERVERS}
                    for _ in range(args.rounds):
                        for server in servers:
                            load = _load(
                                server, bodies, expected, level, args.seconds, args.requests
                            )
                            turns[server.kind].append(asyncio.run(load))
                    for kind, stats in turns.items():
                        row = {"model": name, "server": kind, "concurrency": level}
                        row |= _median(stats)
                        print(json.dumps(row), flush=True)
                        results.append(row)
    print(json.dumps({"ratios": _ratios(results), "machine": _machine()}), flush=True)


def _median(turns: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the rounds; errors and mismatches summed."""
    if "skipped" in turns[0]:
        return turns[0]
    row: dict[str, Any] = {"rounds": len(turns)}
    for key, value in turns[0].items():
        values = [turn[key] for turn in turns]
        if key in ("errors", "mismatches", "requests"):
            row[key] = sum(values)
        elif value is None:
            row[key] = None
        else:
            row[key] = round(statistics.median(values), 2)
    return row


def _train(name: str, folder: Path, tiny: bool) -> mg.Run:
    config = json.loads(json.dumps(WORKLOADS[name]))
    config["name"] = name
    config["train"]["epochs"] = 1 if tiny else EPOCHS[name]
    run = mg.train(config, output_dir=folder / name)
    try:
        run.export(folder / name / "bundle")
    except mg.MegalithError as error:  # the onnx server is then skipped
        print(json.dumps({"model": name, "export": str(error)}), file=sys.stderr)
    return run


def _requests(run: mg.Run) -> tuple[list[dict[str, Any]], list[Any]]:
    """One-row request bodies from the run's test split, and what `Run.predict` answers."""
    _, splits = run.data_splits()
    frame = splits["test"].head(200)
    inputs = [f.name for f in run.config.inputs]
    target = run.config.outputs[0].name
    expected = run.predict(frame[inputs])[target].tolist()
    bodies = []
    for _, row in frame[inputs].iterrows():
        record = {}
        for name in inputs:
            value = row[name]
            record[name] = _png(value) if isinstance(value, np.ndarray) else value
        bodies.append({"rows": [record]})
    return bodies, expected


def _png(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


class _Server:
    """One server process on a free loopback port, stopped on exit."""

    def __init__(self, kind: str, run: mg.Run) -> None:
        self.kind, self.run = kind, run
        self.process: subprocess.Popen[bytes] | None = None
        self.url: str | None = None

    def cpu_seconds(self) -> float | None:
        """CPU seconds the server process has used (all its threads; Linux only)."""
        stat = Path(f"/proc/{self.process.pid}/stat") if self.process else None
        if stat is None or not stat.is_file():
            return None
        fields = stat.read_text().rsplit(")", 1)[1].split()  # after the command name
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def __enter__(self) -> _Server:
        port = _free_port()
        env = {**os.environ, "MEGALITH_RUN": str(self.run.path)}
        serve = [sys.executable, "-m", "megalith", "serve", str(self.run.path), "--port", str(port)]
        commands = {
            "reference": [sys.executable, "-m", "uvicorn", "benchmarks.serve_reference:app",
                          "--port", str(port), "--log-level", "warning"],
            "megalith-unbatched": [*serve, "--backend", "torch", "--no-batching"],
            "megalith-batched": [*serve, "--backend", "torch"],
            "megalith-onnx-batched": [*serve, "--backend", "onnx"],
        }  # fmt: skip
        if self.kind == "megalith-onnx-batched" and not (self.run.path / "bundle").is_dir():
            return self  # no url: skipped
        self.process = subprocess.Popen(
            commands[self.kind], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                httpx.post(f"{url}/predict", json={"rows": []}, timeout=1)
                self.url = url
                return self
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.kind} did not start")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)


async def _load(
    server: _Server,
    bodies: list[dict[str, Any]],
    expected: list[Any],
    concurrency: int,
    seconds: float,
    requests: int,
) -> dict[str, Any]:
    url = server.url
    if url is None:
        return {"skipped": "no bundle (export failed)"}
    latencies: list[float] = []
    errors = mismatches = 0
    sent = 0
    one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with contextlib.AsyncExitStack() as stack:
        clients = [  # one per worker: a shared pool costs more CPU than some servers
            await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30, limits=one))
            for _ in range(concurrency)
        ]
        for i, client in enumerate(clients):  # open every connection before timing
            await client.post("/predict", json=bodies[i % len(bodies)])
        for body in bodies[:20]:  # warm-up: lazy imports, first allocations, thread pools
            await clients[0].post("/predict", json=body)
        before = await _batches(clients[0])
        start, cpu, served = time.perf_counter(), time.process_time(), server.cpu_seconds()

        async def worker(client: httpx.AsyncClient) -> None:
            nonlocal sent, errors, mismatches
            while sent < requests and time.perf_counter() - start < seconds:
                i = sent % len(bodies)
                sent += 1
                began = time.perf_counter()
                answer = await client.post("/predict", json=bodies[i])
                latencies.append((time.perf_counter() - began) * 1000)
                if answer.status_code != 200:
                    errors += 1
                    continue
                label = next(iter(answer.json()["predictions"][0].values()))
                mismatches += label != expected[i] and str(label) != str(expected[i])

        await asyncio.gather(*(worker(client) for client in clients))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        served_after = server.cpu_seconds()
        after = await _batches(clients[0])
    ordered = sorted(latencies)
    batches = after[0] - before[0]
    return {
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
        "errors": errors,
        "mismatches": int(mismatches),
        "mean_batch_rows": round((after[1] - before[1]) / batches, 2) if batches else None,
        "server_cpu_ms_per_request": (
            round((served_after - served) * 1000 / max(1, len(latencies)), 2)
            if served is not None and served_after is not None
            else None
        ),
        "client_cpu_ms_per_request": round(cpu * 1000 / max(1, len(latencies)), 2),
    }


async def _batches(client: httpx.AsyncClient) -> tuple[int, float]:
    """(batches, rows) the Megalith server has run so far; (0, 0) for the reference."""
    answer = await client.get("/metadata")
    if answer.status_code != 200:
        return 0, 0.0
    batching = answer.json()["batching"]
    return batching["batches"], batching["batches"] * batching["mean_batch_rows"]


def _ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each Megalith server against the reference at the same model and concurrency."""
    reference = {(r["model"], r["concurrency"]): r for r in results if r["server"] == "reference"}
    ratios = []
    for row in results:
        base = reference.get((row["model"], row["concurrency"]))
        if row["server"] == "reference" or base is None or "requests_per_s" not in row:
            continue
        ratios.append(
            {
                "model": row["model"],
                "server": row["server"],
                "concurrency": row["concurrency"],
                "throughput_ratio": round(row["requests_per_s"] / base["requests_per_s"], 2),
                "p50_added_ms": round(row["p50_ms"] - base["p50_ms"], 2),
                "p95_ratio": round(row["p95_ms"] / base["p95_ms"], 2),
                "server_cpu_ratio": (  # the reference's CPU per request / this server's
                    round(base["server_cpu_ms_per_request"] / row["server_cpu_ms_per_request"], 2)
                    if base.get("server_cpu_ms_per_request") and row["server_cpu_ms_per_request"]
                    else None
                ),
            }
        )
    return ratios


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _machine() -> dict[str, Any]:
    import torch

    return {
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
    }


if __name__ == "__main__":
    main()
