"""megalith.training.worker_errors: under `--devices`, rank 0 prints its error, the others
leave theirs for the launcher, which prints only those rank 0 did not say."""

from __future__ import annotations

from pathlib import Path

import pytest

from megalith.training.worker_errors import ERRORS_DIR, other_ranks_errors, say_error


def _as_rank(monkeypatch: pytest.MonkeyPatch, folder: Path | None, rank: int, world: int) -> None:
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", str(world))
    if folder is None:
        monkeypatch.delenv(ERRORS_DIR, raising=False)
    else:
        monkeypatch.setenv(ERRORS_DIR, str(folder))


def test_only_rank_0_prints_and_every_rank_leaves_its_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for rank in range(3):
        _as_rank(monkeypatch, tmp_path, rank, 3)
        assert say_error("error: no column 'x'") is (rank == 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rank0.txt", "rank1.txt", "rank2.txt"]
    assert other_ranks_errors(tmp_path) == []  # all said what rank 0 said


def test_an_error_of_one_rank_alone_is_printed_once_naming_it(tmp_path: Path) -> None:
    (tmp_path / "rank0.txt").write_text("error: no column 'x'")
    for rank in (1, 3, 12):
        (tmp_path / f"rank{rank}.txt").write_text("error: cannot read shard.bin")
    (tmp_path / "rank2.txt").write_text("error: no column 'x'")
    assert other_ranks_errors(tmp_path) == ["error: process rank 1: cannot read shard.bin"]
    (tmp_path / "rank0.txt").unlink()  # rank 0 did not fail: the others are said
    assert other_ranks_errors(tmp_path) == [
        "error: process rank 1: cannot read shard.bin",
        "error: process rank 2: no column 'x'",
    ]


def test_without_a_launcher_every_process_prints_as_before(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _as_rank(monkeypatch, None, 1, 2)  # a plain torchrun, e.g. across machines
    assert say_error("error: no column 'x'")
    _as_rank(monkeypatch, tmp_path, 0, 1)  # one process
    assert say_error("error: no column 'x'") and not list(tmp_path.iterdir())
