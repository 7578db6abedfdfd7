"""predict / explain / evaluate --data FOLDER on a run that reads a table: one line saying the
run wants a table file (it described an image folder's layout instead)."""

from __future__ import annotations

from pathlib import Path

import pytest

from megalith.config import Config, validate_config
from megalith.errors import DataError
from megalith.run_data import read_run_table


def _config(image: bool) -> Config:
    inputs = [{"name": "text", "type": "text"}, {"name": "age", "type": "number"}]
    if image:
        inputs.append({"name": "image", "type": "image"})
    return validate_config(
        {
            "data": {"source": "t.csv"},
            "inputs": inputs,
            "outputs": [{"name": "label", "type": "category"}],
        }
    )


def test_a_folder_given_to_a_table_run_is_refused_naming_the_table_files(tmp_path: Path) -> None:
    folder = tmp_path / "new"
    folder.mkdir()
    (folder / "rows.csv").write_text("text,age\nhi,3\n")
    with pytest.raises(DataError) as caught:
        read_run_table(_config(image=False), tmp_path / "run", folder)
    message = str(caught.value)
    assert message.startswith(f"{folder} is a folder, but the run")
    assert "'text', 'age'" in message and "(the folder holds rows.csv)" in message
    assert "subfolder per class" not in message


def test_a_run_with_an_image_input_still_reads_an_image_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="subfolder per class"):  # read as an image folder
        read_run_table(_config(image=True), tmp_path / "run", tmp_path)
