"""`megalith train --devices 2` with train.privacy is refused once, before torchrun starts."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import pytest

from megalith.cli import main


def test_private_training_on_two_devices_is_refused_before_launch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "t.csv").write_text("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(20)))
    (tmp_path / "c.yaml").write_text(
        "data: {source: t.csv}\ninputs: [{name: x, type: number}]\n"
        "outputs: [{name: y, type: binary}]\ntrain: {epochs: 1, privacy: {epsilon: 3}}\n"
    )

    def no_torchrun(*_: object, **__: object) -> int:
        raise AssertionError("torchrun was started")  # its workers printed a traceback each

    monkeypatch.setattr(subprocess, "call", no_torchrun)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["megalith", "train", "c.yaml", "--devices", "2"])
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 2
    assert "--devices: private training runs in one process" in err.getvalue()
    assert "Traceback" not in err.getvalue()
