"""Training that survives failures: a killed process is restarted by torchrun and the run
resumes by itself; a run resumes on another number of processes (DDP and FSDP)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from megalith.training import checkpoint as ckpt
from tests.multiprocess import TIMEOUT, free_port, megalith_train, start_train, worker

pytestmark = pytest.mark.slow

CONFIG = {
    "name": "elastic",
    "data": {"source": "builtin:digits_table"},
    "inputs": [{"name": f"px{i}", "type": "number"} for i in (10, 20, 21, 26, 30, 36, 42, 43)],
    "outputs": [{"name": "label", "type": "category"}],
    "model": {"arch": "mlp", "hidden": [32], "dropout": 0.0},
    "train": {
        "epochs": 3,
        "batch_size": 64,
        "schedule": {"name": "cosine"},
        "checkpoint_every": 3,
        "baselines": False,
    },
}


def _write_config(folder: Path, **train: object) -> Path:
    config = {**CONFIG, "train": {**CONFIG["train"], **train}}
    path = folder / "cfg.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _kill_after_checkpoint(
    process: subprocess.Popen[str], run: Path, rank: int | None, signum: int = signal.SIGKILL
) -> None:
    """SIGKILL torchrun's worker of `rank` (None: the single process itself) once a mid-epoch
    checkpoint exists."""
    deadline = time.monotonic() + TIMEOUT
    folder = run / "checkpoints"
    while not (folder.is_dir() and any(p.name >= "step-000000006" for p in folder.iterdir())):
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.005)
    os.kill(process.pid if rank is None else worker(process.pid, rank), signum)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "model.safetensors")


def _reference(folder: Path, *devices: str) -> Path:
    _write_config(folder)
    result = megalith_train(folder, "cfg.yaml", "-o", "reference", *devices)
    assert result.returncode == 0, result.stderr
    return folder / "reference"


@pytest.fixture(scope="module")
def one_process_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CONFIG trained in one go by one process (a strategy changes nothing there)."""
    return _reference(tmp_path_factory.mktemp("one"))


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CONFIG trained in one go by two processes under one torchrun agent."""
    return _reference(tmp_path_factory.mktemp("two"), "--devices", "2")


def test_a_killed_process_is_restarted_and_the_run_ends_as_if_uninterrupted(
    tmp_path: Path, two_process_run: Path
) -> None:
    _write_config(tmp_path)

    command = ("cfg.yaml", "-o", "run", "--devices", "2", "--max-restarts", "1")
    process = start_train(tmp_path, *command)
    try:
        _kill_after_checkpoint(process, tmp_path / "run", rank=1)
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    _, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, stderr
    log = " ".join(stderr.split())  # the console wraps long lines
    assert "restarted by torchrun (restart 1): continuing from the last complete checkpoint" in log
    assert re.search(r"resuming from step-0+(\d+) \(step \1, epoch 1\)", log), stderr
    a, b = _weights(two_process_run), _weights(tmp_path / "run")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[key], b[key]) for key in a), "weights differ"
    scores = [
        json.loads((run / "eval.json").read_text()) for run in (two_process_run, tmp_path / "run")
    ]
    assert scores[0]["test"] == scores[1]["test"]


def _epochs(run: Path) -> list[dict[str, float]]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, lines) if "val/loss" in record]


@pytest.mark.parametrize(("strategy", "before", "after"), [("ddp", 2, 1), ("fsdp", 1, 2)])
def test_a_run_resumes_on_another_number_of_processes(
    tmp_path: Path, one_process_run: Path, strategy: str, before: int, after: int
) -> None:
    _write_config(tmp_path, strategy=strategy)

    devices = ["--devices", str(before)] if before > 1 else []
    process = start_train(tmp_path, "cfg.yaml", "-o", "run", *devices)
    try:
        _kill_after_checkpoint(process, tmp_path / "run", rank=1 if before > 1 else None)
        process.communicate(timeout=TIMEOUT)
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    assert process.returncode != 0, "the run finished before it was killed"
    resumed = megalith_train(tmp_path, "--resume", "run", "--devices", str(after))
    assert resumed.returncode == 0, resumed.stderr
    log = " ".join(resumed.stderr.split())  # the console wraps long lines
    assert f"resuming on {after} process(es); the checkpoint was written by {before}" in log
    assert "the global batch stays 64 rows per step" in log

    a, b = _weights(one_process_run), _weights(tmp_path / "run")
    for key in a:  # the same global batches in the same order; only the reduction order differs
        torch.testing.assert_close(a[key], b[key], atol=2e-3, rtol=0)
    if after > 1 and strategy == "fsdp":  # the two processes wrote sharded checkpoints
        last = ckpt.load_latest_checkpoint(tmp_path / "run" / "checkpoints")
        assert last is not None and len(list((last.path / "shards").iterdir())) == after
        assert all(torch.equal(last.model[key], b[key]) for key in b)  # read whole: the end
    ours, theirs = _epochs(tmp_path / "run"), _epochs(one_process_run)
    assert [e["epoch"] for e in ours] == [1, 2, 3]
    for mine, reference_epoch in zip(ours, theirs, strict=True):
        assert abs(mine["val/loss"] - reference_epoch["val/loss"]) < 1e-2
        assert mine["lr"] == pytest.approx(reference_epoch["lr"])  # the schedule is unchanged


def test_a_sigterm_reaching_one_fsdp_process_stops_both_at_one_checkpoint(tmp_path: Path) -> None:
    """Only rank 1 gets the signal; the ranks agree at the next step, write that step's sharded
    checkpoint together and both stop (alone, rank 1 would wait in the checkpoint's collectives
    until the collective timeout)."""
    _write_config(tmp_path, strategy="fsdp", epochs=30, collective_timeout=120)
    process = start_train(tmp_path, "cfg.yaml", "-o", "run", "--devices", "2")
    try:
        _kill_after_checkpoint(process, tmp_path / "run", rank=1, signum=signal.SIGTERM)
        _, stderr = process.communicate(timeout=90)  # before the collective timeout
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    assert process.returncode == 128 + signal.SIGTERM, stderr  # as one process; torchrun said 1
    assert "Traceback" not in stderr and "ChildFailedError" not in stderr
    log = " ".join(stderr.split())  # the console wraps long lines
    # said once, by rank 0 (for rank 1's signal): rank 1 stopped at another step would be
    # said too, as "process rank 1: stopped by ..." (megalith.training.worker_errors)
    steps = re.findall(r"(process rank \d+: )?stopped by SIGTERM after step (\d+); checkpoint", log)
    assert len(steps) == 1 and steps[0][0] == "", stderr
    assert "stopped answering" not in log
    latest = ckpt.load_latest_checkpoint(tmp_path / "run" / "checkpoints")
    assert latest is not None and latest.state["loop"]["position"]["step"] == int(steps[0][1])
    assert len(list((latest.path / "shards").iterdir())) == 2


def test_a_stalled_process_ends_the_run_with_an_error_naming_it(tmp_path: Path) -> None:
    _write_config(tmp_path, epochs=30, collective_timeout=10)
    process = start_train(tmp_path, "cfg.yaml", "-o", "run", "--devices", "2")
    try:
        _kill_after_checkpoint(process, tmp_path / "run", rank=1, signum=signal.SIGSTOP)
        stalled, waiting = worker(process.pid, 1), worker(process.pid, 0)
        deadline = time.monotonic() + TIMEOUT
        while Path(f"/proc/{waiting}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)  # rank 0 gives up after the timeout...
        os.kill(stalled, signal.SIGCONT)  # ...then torchrun can end the stopped one at once
        _, stderr = process.communicate(timeout=TIMEOUT)
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    assert process.returncode != 0
    log = " ".join(stderr.split())  # the console wraps long lines
    assert "stopped answering in a collective (train.collective_timeout is 10 s)" in log
    assert re.search(r"rank 1: step \d+, last heard \d+ s ago \(stalled\)", log), stderr
    assert re.search(r"rank 0: step \d+, last heard [0-2] s ago;", log), stderr


def test_two_torchrun_agents_on_one_rendezvous_train_as_two_nodes(
    tmp_path: Path, two_process_run: Path
) -> None:
    """Two "machines" (two torchrun agents on loopback, one process each) join one c10d
    rendezvous: the same run as `--devices 2` on one agent."""
    _write_config(tmp_path)
    agent = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1"]
    agent += ["--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{free_port()}"]
    agent += ["--rdzv-id=two-nodes", "-m", "megalith", "train", "cfg.yaml", "-o", "nodes"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # as torchrun sets for several per node
    nodes = [
        subprocess.Popen(agent, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        errors = [node.communicate(timeout=TIMEOUT)[1] for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    assert [node.returncode for node in nodes] == [0, 0], errors
    a, b = _weights(two_process_run), _weights(tmp_path / "nodes")
    for key in a:  # the same global batches; which agent's process is rank 0 may differ
        torch.testing.assert_close(a[key], b[key], atol=2e-3, rtol=0)
    runs = (two_process_run, tmp_path / "nodes")
    scores = [json.loads((run / "eval.json").read_text()) for run in runs]
    assert scores[1]["training"]["processes"] == 2
    assert abs(scores[0]["test"]["loss"] - scores[1]["test"]["loss"]) < 1e-2
