"""`megalith init FOLDER` without --target names the column an image folder has ('label')."""

from __future__ import annotations

from pathlib import Path

from conftest import run_cli


def test_init_of_an_image_folder_without_target_names_label(tmp_path: Path) -> None:
    folder = tmp_path / "pictures"
    (folder / "cats").mkdir(parents=True)
    outcome = run_cli("init", folder)
    assert outcome.code == 2
    assert "give --target label: an image folder's class is its column 'label'" in outcome.stderr
    assert "Traceback" not in outcome.stderr
