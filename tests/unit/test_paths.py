"""megalith.paths: the one check of every path read, and of every run directory written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch

from megalith.errors import ConfigError, DataError, RunError
from megalith.paths import check_confined, check_inside, check_readable, remove_path, resolved
from megalith.training.checkpoint import save_checkpoint


def test_regular_files_and_folders_are_readable(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    assert check_readable(tmp_path / "a.csv", "data source") == tmp_path / "a.csv"
    assert check_readable(tmp_path, "data source", kind="folder") == tmp_path
    (tmp_path / "link.csv").symlink_to("a.csv")  # a link to a file is that file
    assert check_readable(tmp_path / "link.csv", "data source", kind="file")


def test_each_kind_of_unreadable_path_is_one_line_naming_it(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "loop").symlink_to("loop")
    (tmp_path / "gone").symlink_to("nowhere")
    (tmp_path / "file").write_text("")
    cases = {
        "pipe": "is not a regular file or folder (a pipe, socket or device?)",
        "loop": "is a symlink loop",
        "gone": "not found: {} (a symlink to a missing path)",
        "missing": "not found: {}",
    }
    for name, words in cases.items():
        path = tmp_path / name
        with pytest.raises(DataError) as raised:
            check_readable(path, "data source", hint="fix it")
        message = str(raised.value)
        assert words.format(path) in message and str(path) in message, message
        assert message.endswith("; fix it") and "\n" not in message
    with pytest.raises(ConfigError, match=r"config file .*dev/zero is not a regular file"):
        check_readable("/dev/zero", "config file", error=ConfigError)
    with pytest.raises(DataError, match="is a file, not a folder"):
        check_readable(tmp_path / "file", "x", kind="folder")
    with pytest.raises(DataError, match="is a folder, not a file"):
        check_readable(tmp_path, "x", kind="file")


def test_resolved_does_not_raise_on_a_loop(tmp_path: Path) -> None:
    (tmp_path / "loop").symlink_to("loop")
    assert resolved(tmp_path / "loop").parent == resolved(tmp_path)


@pytest.fixture
def run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    (run / "checkpoints" / "step-000000001").mkdir(parents=True)
    (run / "config.yaml").write_text("")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "bait.txt").write_text("keep me")
    return run


def test_links_inside_the_run_are_fine_and_links_out_are_refused(run: Path) -> None:
    (run / "plots").symlink_to("checkpoints")
    (run / "checkpoints" / "config.yaml").symlink_to("../config.yaml")
    check_confined(run)
    deep = run / "checkpoints" / "step-000000001" / "model.safetensors"
    deep.symlink_to(run.parent / "outside" / "bait.txt")
    with pytest.raises(RunError, match=f"{deep} is a symlink to .*outside the run directory"):
        check_confined(run)
    deep.unlink()
    (run / "tensorboard").symlink_to("../outside/nowhere")  # dangling, but out all the same
    with pytest.raises(RunError, match=re.escape("tensorboard is a symlink to ../outside/nowhere")):
        check_confined(run)


def test_a_run_reached_through_a_symlink_is_judged_where_it_lies(run: Path) -> None:
    (run / "plots").symlink_to("checkpoints")
    (run.parent / "latest").symlink_to("run")
    check_confined(run.parent / "latest")
    check_inside(run.parent / "latest", run.parent / "latest" / "plots")


def test_loops_and_special_files_in_a_run_are_refused(run: Path) -> None:
    (run / "metrics.jsonl").symlink_to("metrics.jsonl")
    with pytest.raises(RunError, match=r"metrics\.jsonl is a symlink loop"):
        check_confined(run)
    (run / "metrics.jsonl").unlink()
    os.mkfifo(run / "checkpoints" / "state.json")
    with pytest.raises(RunError, match=r"state\.json in the run directory is not a regular file"):
        check_confined(run)


def test_check_inside_follows_links(run: Path) -> None:
    check_inside(run, run / "report.html")  # not there yet: fine
    (run / "plots").symlink_to(run.parent / "outside")
    with pytest.raises(RunError, match="plots leads out of the run directory"):
        check_inside(run, run / "plots")
    with pytest.raises(RunError):
        check_inside(run, run / "plots" / "loss.png")


def test_remove_path_removes_a_link_never_its_target(run: Path) -> None:
    outside = run.parent / "outside"
    (run / "linked").symlink_to(outside)
    remove_path(run / "linked")
    assert not (run / "linked").exists() and (outside / "bait.txt").read_text() == "keep me"
    remove_path(run / "checkpoints")
    remove_path(run / "config.yaml")
    remove_path(run / "never-there")
    assert sorted(run.iterdir()) == []


def _save(root: Path, step: int) -> Path:
    model = {"w": torch.zeros(2)}
    optimizer = {"state": {}, "param_groups": []}
    return save_checkpoint(root, step, model, optimizer, {"position": {"step": step}})


def test_checkpoints_never_write_or_prune_through_a_link_out(run: Path) -> None:
    outside = run.parent / "outside"
    (outside / "step-000000000").mkdir()
    before = sorted(outside.rglob("*"))
    (run / "checkpoints" / "step-000000000").symlink_to(outside / "step-000000000")
    for step in (2, 3, 4):  # pruning keeps the last two real folders
        _save(run / "checkpoints", step)
    assert (run / "checkpoints" / "step-000000000").is_symlink()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "step-000000000",
        "step-000000003",
        "step-000000004",
    ]
    linked = run.parent / "linked-run"
    linked.mkdir()
    (linked / "checkpoints").symlink_to(outside)
    with pytest.raises(RunError, match="checkpoints leads out of the run directory"):
        _save(linked / "checkpoints", 5)
    assert sorted(outside.rglob("*")) == before


def test_atomic_writes_never_write_through_a_planted_temporary_link(run: Path) -> None:
    from megalith.evaluate.html import write_atomically
    from megalith.runs import RunDir, save_tensors_atomically

    bait = run.parent / "outside" / "bait.txt"
    for planted in ("eval.json.tmp", "model.safetensors.tmp", ".report.html.tmp"):
        (run / planted).symlink_to(bait)
    RunDir(run).write_json(run / "eval.json", {"test": {}})
    save_tensors_atomically({"w": torch.zeros(1)}, run / "model.safetensors")
    write_atomically(run / "report.html", "<html></html>")
    assert bait.read_text() == "keep me"
    for name in ("eval.json", "model.safetensors", "report.html"):
        assert (run / name).is_file() and not (run / name).is_symlink()
    (run / "metrics.jsonl").symlink_to(bait)
    with pytest.raises(RunError, match="leads out of the run directory"):
        RunDir(run).write_text(run / "metrics.jsonl", "")
    assert bait.read_text() == "keep me"


def test_a_model_folder_with_a_pipe_or_a_loop_among_its_files_is_refused(tmp_path: Path) -> None:
    from megalith.models.pretrained import check_model_dir

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"")
    os.mkfifo(model / "tokenizer.json")  # transformers would block reading it
    with pytest.raises(ConfigError, match=r"model\.path file .*tokenizer\.json is not a regular"):
        check_model_dir(str(model))
    (model / "tokenizer.json").unlink()
    (model / "vocab.txt").symlink_to("vocab.txt")
    with pytest.raises(ConfigError, match=r"vocab\.txt is a symlink loop"):
        check_model_dir(str(model))
    (model / "vocab.txt").unlink()
    assert check_model_dir(str(model)) == model
