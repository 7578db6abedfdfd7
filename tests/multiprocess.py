"""Shared helpers of the tests that start several real processes: `megalith train` (under
torchrun with --devices), a script run as N ranks of one Gloo group without torchrun's agent
(a second or two less each), and `mg.train` run so, straight, stopped by a signal or resumed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

TIMEOUT = 300


def megalith_train(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`megalith train ARGS` run in `folder` to its end (its exit code is not checked)."""
    return subprocess.run(
        [sys.executable, "-m", "megalith", "train", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def start_train(folder: Path, *args: str) -> subprocess.Popen[str]:
    """`megalith train ARGS` started in `folder`, in a session of its own: a failed test ends
    torchrun's agent and workers with it (os.killpg)."""
    return subprocess.Popen(
        [sys.executable, "-m", "megalith", "train", *args],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def children(pid: int) -> list[int]:
    """The pids of the processes whose parent is `pid` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def worker(launcher: int, rank: int) -> int:
    """The pid of torchrun's worker of `rank`, under `megalith train --devices N` (pid)."""
    for agent in children(launcher):
        for process in children(agent):
            environ = Path(f"/proc/{process}/environ").read_bytes().split(b"\0")
            if f"RANK={rank}".encode() in environ:
                return process
    raise LookupError(f"no worker of rank {rank} under {launcher}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_ranks(script: Path, world: int, *args: str) -> list[str]:
    """`python SCRIPT ARGS` as ranks 0..world-1 of one group (the env:// variables torchrun
    would set), waited for; returns every rank's stdout. A rank that fails ends the others
    at once (they would wait for it in a collective): AssertionError with its stderr."""
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    env.update(WORLD_SIZE=str(world), OMP_NUM_THREADS="1")
    logs = [
        (script.with_name(f"rank{r}.out"), script.with_name(f"rank{r}.err")) for r in range(world)
    ]
    ranks = []
    for rank, (out, err) in enumerate(logs):
        with out.open("w") as stdout, err.open("w") as stderr:
            ranks.append(
                subprocess.Popen(
                    [sys.executable, str(script), *args],
                    env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
                    stdout=stdout,
                    stderr=stderr,
                    text=True,
                )
            )
    deadline = time.monotonic() + TIMEOUT
    try:
        while any(process.poll() is None for process in ranks):
            failed = [r for r, process in enumerate(ranks) if process.poll()]
            assert not failed and time.monotonic() < deadline, _failure(logs, failed)
            time.sleep(0.02)
        failed = [r for r, process in enumerate(ranks) if process.returncode]
        assert not failed, _failure(logs, failed)
    finally:
        for process in ranks:
            process.kill()
            process.wait()
    return [out.read_text() for out, _ in logs]


def _failure(logs: list[tuple[Path, Path]], failed: list[int]) -> str:
    if not failed:
        return f"the ranks did not end within {TIMEOUT} s"
    return f"rank {failed[0]} failed: {logs[failed[0]][1].read_text()[-3000:]}"


_TRAIN_RANK = """
import hashlib, json, os, signal, sys
import torch
import megalith as mg
from megalith.training.callbacks import Callback
from megalith.training.safety import TrainingInterrupted

config, out, mode = json.loads(open(sys.argv[1]).read()), sys.argv[2], sys.argv[3]
stop_step = int(sys.argv[4])
torch.set_num_threads(1)


class Stop(Callback):  # a SIGTERM at `stop_step`: every rank checkpoints and stops
    def on_step_end(self, step, epoch, rows, loss):
        if step == stop_step:
            os.kill(os.getpid(), signal.SIGTERM)


try:
    if mode == "resume":
        run = mg.train(resume=out)
    else:
        run = mg.train(config, output_dir=out, callbacks=[Stop()] if mode == "stop" else [])
except TrainingInterrupted:
    print(json.dumps({"stopped": True}))
    sys.exit(0)
digest = hashlib.sha256()
for name, tensor in sorted(run.model.state_dict().items()):
    digest.update(name.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
print(json.dumps({"weights": digest.hexdigest()}))
"""


def train_ranks(
    config: dict[str, Any], out: Path, mode: str, stop_step: int = 0, world: int = 2
) -> list[dict[str, Any]]:
    """`mg.train(config, output_dir=out)` as ranks 0..world-1 of one Gloo group (run_ranks).

    `mode` is "straight" (to the end), "stop" (a SIGTERM at step `stop_step`: every rank
    checkpoints and stops) or "resume" (`mg.train(resume=out)`). Returns each rank's answer:
    {"stopped": True}, or {"weights": the SHA-256 of its model's state dict}. The script and its
    logs are written beside `out`."""
    script = out.with_name(f"{out.name}-rank.py")
    script.write_text(textwrap.dedent(_TRAIN_RANK))
    config_file = out.with_name(f"{out.name}-config.json")
    config_file.write_text(json.dumps(config))
    logs = run_ranks(script, world, str(config_file), str(out), mode, str(stop_step))
    return [json.loads(log.splitlines()[-1]) for log in logs]
