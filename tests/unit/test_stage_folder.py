"""megalith/stage_folder.py: a stage's output is built beside its place and moved in whole."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from megalith.stage_folder import staged_folder


def test_the_folder_moves_into_place_when_the_block_ends(tmp_path: Path) -> None:
    with staged_folder(tmp_path / "out") as folder:
        (folder / "a.txt").write_text("done")
    assert (tmp_path / "out" / "a.txt").read_text() == "done"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # nothing left beside it


def test_sigterm_cleans_up_like_ctrl_c_and_leaves_the_old_output(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("mine")
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), staged_folder(tmp_path / "out") as folder:
        (folder / "half.txt").write_text("half-written")
        os.kill(os.getpid(), signal.SIGTERM)  # by default this would end Python at once
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["old.txt"]
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is put back
