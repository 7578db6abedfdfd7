"""Knowledge distillation end to end: a student trained with `teacher:` records it, reports it,
resumes with it, and is refused before step 0 when the teacher cannot teach it."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from conftest import REPO, make_table, run_cli

import megalith as mg
from megalith.compress.distill import distill_run
from megalith.errors import ConfigError, RunError
from megalith.pipeline import train

pytestmark = pytest.mark.slow  # the module's teacher and each student train a small model


def _config(folder: Path, hidden: list[int], **changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": "tiny",
        "data": {"source": str(folder / "table.csv"), "split": {"val": 0.1, "test": 0.2}},
        "inputs": [
            {"name": "size", "type": "number"},
            {"name": "color", "type": "category"},
            {"name": "member", "type": "binary"},
        ],
        "outputs": [{"name": "label", "type": "category"}],
        "model": {"arch": "mlp", "hidden": hidden, "dropout": 0.0},
        "train": {
            "epochs": 3,
            "batch_size": 32,
            "optimizer": {"name": "adamw", "lr": 0.01},
            "baselines": False,
        },
    }
    config.update(changes)
    return config


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("distill")
    make_table(rows=240).to_csv(path / "table.csv", index=False)
    return path


@pytest.fixture(scope="module")
def teacher(folder: Path) -> mg.Run:
    return mg.train(_config(folder, [32, 16]), output_dir=folder / "teacher")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_distilled_run_records_and_reports_its_teacher(folder: Path, teacher: mg.Run) -> None:
    weights = _digest(teacher.path / "model.safetensors")
    config = _config(folder, [4], distill={"alpha": 0.3, "temperature": 3.0})
    student = mg.train(config, teacher=teacher, output_dir=folder / "student")
    record = json.loads((student.path / "teacher.json").read_text())
    assert record["path"] == str(teacher.path.resolve())
    assert record["alpha"] == 0.3 and record["temperature"] == 3.0
    assert record["parameters"]["student"] < record["parameters"]["teacher"]
    assert record["parameters"]["student"] == sum(p.numel() for p in student.model.parameters())
    assert record["teacher_test_metrics"] == teacher.metrics["test"]
    assert yaml.safe_load((student.path / "config.yaml").read_text())["teacher"] == record["path"]
    report = (student.path / "report.html").read_text()
    assert "Teacher vs student" in report and str(teacher.path.resolve()) in report
    assert student.metrics["test"]["accuracy"] > 0.5  # three classes: it learned something
    assert _digest(teacher.path / "model.safetensors") == weights  # the teacher is untouched


def test_cli_teacher_option(folder: Path, teacher: mg.Run) -> None:
    path = folder / "student.yaml"
    path.write_text(yaml.safe_dump(_config(folder, [4], train={"epochs": 1, "baselines": False})))
    outcome = run_cli("train", path, "-o", folder / "cli-student", "--teacher", teacher.path)
    assert outcome.code == 0, outcome.stderr
    record = json.loads((folder / "cli-student" / "teacher.json").read_text())
    assert record["path"] == str(teacher.path.resolve())


def test_other_outputs_are_refused_before_step_0(folder: Path, teacher: mg.Run) -> None:
    path = folder / "other.yaml"
    config = _config(folder, [4], outputs=[{"name": "size", "type": "number"}])
    config["inputs"] = config["inputs"][1:]
    path.write_text(yaml.safe_dump(config))
    out = folder / "other-student"
    outcome = run_cli("train", path, "-o", out, "--teacher", teacher.path)
    assert outcome.code != 0
    assert "predicts label (category)" in outcome.stderr and "size (number)" in outcome.stderr
    assert "Traceback" not in outcome.stderr
    assert not out.exists()  # refused before the run directory was made


def test_a_missing_or_unfinished_teacher_is_named(folder: Path) -> None:
    with pytest.raises(RunError, match="no-such-run"):
        mg.train(_config(folder, [4]), teacher=folder / "no-such-run", output_dir=folder / "x")
    (folder / "half").mkdir()
    with pytest.raises(RunError, match=r"teacher .*half cannot be loaded"):
        mg.train(_config(folder, [4]), teacher=folder / "half", output_dir=folder / "y")


def test_a_student_tested_on_the_teachers_train_rows_is_refused(
    folder: Path, teacher: mg.Run
) -> None:
    with pytest.raises(ConfigError, match=r"test rows are in the train split .*seed: 0"):
        mg.train(_config(folder, [4], seed=1), teacher=teacher, output_dir=folder / "z")
    assert not (folder / "z").exists()


def test_resume_keeps_distilling_from_the_same_teacher(folder: Path, teacher: mg.Run) -> None:
    config = _config(folder, [4], train={"epochs": 2, "batch_size": 32, "baselines": False})
    whole = mg.train(config, teacher=teacher, output_dir=folder / "whole")
    half = mg.train(
        config, teacher=teacher, output_dir=folder / "half-way", overrides=["train.epochs=1"]
    )
    resumed = train(resume=half.path, overrides=["train.epochs=2"])
    for name, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    plain = mg.train(config, output_dir=folder / "no-teacher")  # the teacher made a difference
    mine, theirs = plain.model.state_dict(), whole.model.state_dict()
    assert any(not torch.equal(value, theirs[name]) for name, value in mine.items())


def test_resume_after_the_teacher_moved_says_how_to_go_on(folder: Path, teacher: mg.Run) -> None:
    moved = folder / "moved-teacher"
    shutil.copytree(teacher.path, moved)
    config = _config(folder, [4], train={"epochs": 1, "batch_size": 32, "baselines": False})
    half = mg.train(config, teacher=moved, output_dir=folder / "orphan")
    moved.rename(folder / "moved-again")
    before = sorted(p.name for p in (half.path / "checkpoints").iterdir())
    with pytest.raises(RunError, match=r"distilled from it.*put the teacher back at that path"):
        train(resume=half.path, overrides=["train.epochs=2"])
    assert sorted(p.name for p in (half.path / "checkpoints").iterdir()) == before


def test_distill_run_builds_a_half_width_student(folder: Path, teacher: mg.Run) -> None:
    student = distill_run(teacher, folder / "half-width", epochs=1)
    assert student.config.model.hidden == [16, 8]  # type: ignore[union-attr]
    assert student.config.teacher == str(teacher.path.resolve())
    loaded = mg.load(folder / "half-width")
    assert sum(p.numel() for p in loaded.model.parameters()) < sum(
        p.numel() for p in teacher.model.parameters()
    )
    assert (folder / "half-width" / "teacher.json").is_file()
    assert len(loaded.predict(make_table(rows=5, seed=3))) == 5


def test_a_language_model_learns_from_a_language_model(folder: Path) -> None:
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far"]
    lines = [" ".join(words[(i * 7 + j) % 10] for j in range(8)) for i in range(120)]
    (folder / "corpus").mkdir()
    for i in range(20):  # one document per file; split by whole files
        (folder / "corpus" / f"{i}.txt").write_text("\n".join(lines[i * 6 : i * 6 + 6]))
    config = {
        "data": {
            "source": str(folder / "corpus"),
            "format": "text",
            "split": {"val": 0.1, "test": 0.1},
        },
        "outputs": [{"name": "text", "type": "text", "tokenizer": "char"}],
        "model": {"arch": "gpt", "context": 16, "layers": 1, "heads": 2, "dim": 32},
        "train": {"epochs": 1, "batch_size": 16, "baselines": False},
    }
    lm = mg.train(config, output_dir=folder / "lm")
    student = distill_run(lm, folder / "lm-student", epochs=1)
    assert student.config.model.dim == 16  # type: ignore[union-attr]
    assert json.loads((student.path / "teacher.json").read_text())["parameters"]["student"] > 0
    assert student.metrics["test"]["perplexity"] < 1e3
    other = {**config, "outputs": [{"name": "text", "type": "text", "tokenizer": "word"}]}
    with pytest.raises(ConfigError, match="another vocabulary"):
        mg.train(other, teacher=lm, output_dir=folder / "lm-words")


def test_the_benchmark_runs_in_quick_mode() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/distillation.py", "--quick", "--tasks", "digits"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    task, machine = (json.loads(line) for line in result.stdout.splitlines())
    assert task["task"] == "digits" and task["seeds"] == [0]
    assert task["student_parameters"] < task["teacher"]["parameters"]
    assert len(task["plain"]["values"]) == 1 and 0 <= task["plain"]["mean"] <= 1
    assert [(d["alpha"], d["temperature"]) for d in task["distilled"]] == [(0.5, 2.0), (0.1, 4.0)]
    for distilled in task["distilled"]:
        assert len(distilled["values"]) == 1 and 0 <= distilled["mean"] <= 1
        assert distilled["difference"] == pytest.approx(distilled["mean"] - task["plain"]["mean"])
    assert machine["machine"]["cores"] >= 1
