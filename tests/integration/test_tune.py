"""`megalith tune`: a tiny study end to end (CLI, failed combinations, continuing, the page in
Chromium), reproducibility, pruning of hopeless trials, kill -9 and continue, and two workers
sharing a study through a real PostgreSQL server. Every trial is a 1-4 epoch MLP on 300 rows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from chromium import CHROMIUM, load_page
from conftest import CliResult, make_table
from postgres import postgres_server

import megalith as mg
from megalith.config import load_config

optuna = pytest.importorskip("optuna")
pytestmark = pytest.mark.slow  # each test trains a few tiny models


def _config(folder: Path, epochs: int = 1, **train: Any) -> dict[str, Any]:
    make_table(rows=300).to_csv(folder / "table.csv", index=False)
    return {
        "name": "tiny",
        "data": {"source": "table.csv", "split": {"val": 0.2, "test": 0.2}},
        "inputs": [
            {"name": "size", "type": "number"},
            {"name": "color", "type": "category"},
            {"name": "member", "type": "binary"},
        ],
        "outputs": [{"name": "label", "type": "category"}],
        "model": {"arch": "mlp", "hidden": [16]},
        "train": {"epochs": epochs, "batch_size": 32, "baselines": False, **train},
    }


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _tune(*args: str | Path, cwd: Path) -> CliResult:
    return subprocess.run(
        [sys.executable, "-m", "megalith", "tune", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


PAGE_FACTS = """({title: document.title, images: document.images.length,
  broken: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).length,
  rows: document.querySelectorAll('#trials tr').length,
  best: document.querySelector('#best') && document.querySelector('#best').textContent})"""


def test_a_tiny_study_end_to_end_from_the_cli(tmp_path: Path) -> None:
    config = _write(tmp_path / "tiny.yaml", _config(tmp_path))
    space = _write(
        tmp_path / "space.yaml",
        {"train.batch_size": {"choice": [32, 0]}, "model.hidden": {"choice": [[16], [32, 16]]}},
    )
    args = (config, "--space", space, "--sampler", "grid", "--trials", "4", "-o", "study")
    first = _tune(*args, "--metric", "val/accuracy", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert len([line for line in first.stderr.splitlines() if line.startswith("trial ")]) == 4
    summary = json.loads((tmp_path / "study/study.json").read_text())
    assert summary["counts"] == {"complete": 2, "fail": 2}
    for trial in summary["trials"]:
        if trial["params"]["train.batch_size"] == 0:  # an invalid combination: failed, untrained
            assert trial["state"] == "fail" and "train.batch_size" in trial["error"]
            assert not (Path(trial["run_dir"]) / "config.yaml").exists()
        else:
            assert trial["state"] == "complete" and trial["epochs"] == 1
            scores = json.loads((Path(trial["run_dir"]) / "eval.json").read_text())
            assert trial["value"] == pytest.approx(scores["val"]["accuracy"])
            assert (Path(trial["run_dir"]) / "report.html").is_file()
    best = summary["best"]
    completed = [t["value"] for t in summary["trials"] if t["state"] == "complete"]
    assert best["value"] == max(completed)
    cfg, _ = load_config(tmp_path / "study/best.yaml")  # ready for `megalith train`
    assert cfg.model.hidden == best["params"]["model.hidden"]  # type: ignore[union-attr]
    assert cfg.tune is None and cfg.train.batch_size == 32

    again = _tune(*args, "--metric", "val/accuracy", cwd=tmp_path)  # the study is complete
    assert again.returncode == 0 and "4 trials done, 0 to run" in again.stderr
    other = _tune(*args, "--metric", "val/loss", cwd=tmp_path)
    assert other.returncode == 2 and "was started watching val/accuracy" in other.stderr

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    page = load_page(tmp_path / "study/study.html", PAGE_FACTS)
    assert page.failed == [] and page.errors == []
    assert all(url.startswith("data:image/png;base64,") for url in page.requests[1:])
    facts = page.facts
    assert facts["title"] == "Study tiny" and facts["rows"] == 5  # a head and four trials
    assert facts["images"] >= 3 and facts["broken"] == 0
    assert f"trial {best['number']}" in facts["best"]


def test_a_study_with_the_random_sampler_is_reproducible(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    config = _config(tmp_path)
    space = {
        "train.optimizer.lr": {"loguniform": [1e-3, 1e-1]},
        "model.dropout": {"uniform": [0, 0.5]},
    }
    runs = [
        mg.tune(config, space, trials=2, sampler="random", pruner="none", study_dir=name, seed=7)
        for name in ("a", "b")
    ]
    assert [t["params"] for t in runs[0].trials] == [t["params"] for t in runs[1].trials]
    assert [t["value"] for t in runs[0].trials] == [t["value"] for t in runs[1].trials]
    assert runs[0].trials[0]["params"] != runs[0].trials[1]["params"]


def test_pruning_stops_the_hopeless_trials(tmp_path: Path) -> None:
    """Half the learning rates cannot learn in 4 epochs; the median rule stops those early.

    The grid sampler's order, seeded, is sane, hopeless, sane, sane, hopeless, hopeless: the
    rule waits for 4 finished trials, then judges the last two against their median."""
    os.chdir(tmp_path)
    config = _config(tmp_path, epochs=4, optimizer={"name": "sgd", "lr": 0.1})
    space = {
        "train.optimizer.lr": {"choice": [0.3, 1.0e-7]},
        "model.dropout": {"choice": [0.0, 0.1, 0.2]},
    }
    result = mg.tune(config, space, trials=6, sampler="grid", pruner="median", seed=1)
    hopeless = [t for t in result.trials if t["params"]["train.optimizer.lr"] == 1e-7]
    sane = [t for t in result.trials if t["params"]["train.optimizer.lr"] == 0.3]
    assert len(hopeless) == 3 and len(sane) == 3
    judged = [t for t in hopeless if t["number"] >= 4]  # the median rule waits for 4 trials
    assert len(judged) == 2
    assert all(t["state"] == "pruned" and t["epochs"] == 1 for t in judged)  # of 4
    assert all(t["state"] == "complete" for t in sane)
    assert result.epochs < 4 * len(result.trials)
    pruned_run = Path(judged[0]["run_dir"])  # keeps its partial run: config and epoch log
    assert (pruned_run / "config.yaml").is_file()
    assert len((pruned_run / "metrics.jsonl").read_text().splitlines()) >= judged[0]["epochs"]


def test_a_study_killed_mid_trial_continues_without_losing_a_trial(tmp_path: Path) -> None:
    config = _write(tmp_path / "tiny.yaml", _config(tmp_path, epochs=3))
    space = _write(tmp_path / "space.yaml", {"train.optimizer.lr": {"loguniform": [1e-3, 1e-1]}})
    args = [sys.executable, "-m", "megalith", "tune", str(config), "--space", str(space)]
    args += ["--trials", "3", "--pruner", "none", "-o", "study"]
    process = subprocess.Popen(args, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    second = tmp_path / "study/trials/001/config.yaml"
    deadline = time.monotonic() + 240
    while not second.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)  # while trial 1 trains
    process.wait()
    assert second.exists() and process.returncode == -signal.SIGKILL
    first_score = json.loads((tmp_path / "study/trials/000/eval.json").read_text())["val"]["loss"]

    again = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "trial 001 was interrupted; it runs again" in again.stderr
    trials = json.loads((tmp_path / "study/study.json").read_text())["trials"]
    assert trials[0]["state"] == "complete" and trials[0]["value"] == pytest.approx(first_score)
    assert trials[1]["state"] == "fail" and "interrupted" in trials[1]["error"]
    retried = [t for t in trials if t["number"] > 1 and t["params"] == trials[1]["params"]]
    assert len(retried) == 1 and retried[0]["state"] == "complete"
    assert [t["state"] for t in trials].count("complete") == 3  # --trials 3 counts finished ones


def test_two_workers_share_a_study_through_postgresql(tmp_path: Path) -> None:
    config = _write(tmp_path / "tiny.yaml", _config(tmp_path))
    space = _write(tmp_path / "space.yaml", {"train.optimizer.lr": {"loguniform": [1e-3, 1e-1]}})
    try:
        server = postgres_server()
        url = server.__enter__()
    except RuntimeError as error:
        pytest.skip(f"no PostgreSQL server here ({error}); .ci/run installs Debian's postgresql")
    try:
        result = _tune(
            config, "--space", space, "--trials", "4", "--workers", "2", "--storage", url,
            "--study", "shared", "-o", "study", cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        study = optuna.load_study(study_name="shared", storage=url)
        trials = study.get_trials()
        assert [t.state.name for t in trials] == ["COMPLETE"] * 4
        assert (
            len({t.user_attrs["megalith"]["worker"] for t in trials}) == 2
        )  # two processes took part
        summary = json.loads((tmp_path / "study/study.json").read_text())
        assert summary["best"]["value"] == study.best_value and "***" not in summary["storage"]
    finally:
        server.__exit__(None, None, None)
