"""megalith.runtime: a bundle predicts raw rows without torch, as the run itself does."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from exported import outputs_table, train_tiny_run

import megalith as mg
from megalith.errors import DataError, RunError
from megalith.runtime import load_bundle

WITHOUT_TORCH = """
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
import importlib, pkgutil
import pandas as pd
import megalith.runtime
from megalith.runtime import load_bundle

for module in pkgutil.iter_modules(megalith.runtime.__path__):  # every module, seq2seq decoding too
    importlib.import_module(f"megalith.runtime.{module.name}")
rows = pd.read_csv(sys.argv[2])
load_bundle(sys.argv[1]).predict(rows).to_json(sys.argv[3], orient="split")
print(sorted(name for name in sys.modules if name.split(".")[0] == "torch"))
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> mg.Run:
    return train_tiny_run(tmp_path_factory.mktemp("runtime"))


@pytest.fixture(scope="module")
def bundle(run: mg.Run) -> Path:
    return run.export(run.path.parent / "bundle")


def new_rows() -> pd.DataFrame:
    rows = outputs_table(rows=80, seed=5).drop(columns=["label", "big", "score"])
    rows.loc[3, "color"] = "purple"  # unknown category: the unknown index
    rows.loc[4, "size"] = np.nan  # missing number: the train mean
    rows.loc[5, "member"] = None  # missing binary: the train mode
    return rows


def assert_same_predictions(found: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(found.columns) == list(expected.columns)
    assert found["label"].tolist() == expected["label"].tolist()
    assert found["big"].tolist() == expected["big"].tolist()
    numbers = [c for c in expected.columns if c not in ("label", "big")]
    difference = (found[numbers] - expected[numbers]).abs().to_numpy().max()
    assert difference <= 1e-4


def test_runtime_predicts_as_the_run_with_torch_unimportable(
    run: mg.Run, bundle: Path, tmp_path: Path
) -> None:
    new_rows().to_csv(tmp_path / "rows.csv", index=False)
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_TORCH, bundle, tmp_path / "rows.csv", tmp_path / "p.json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['torch']"  # only the blocked entry: nothing imported it
    found = pd.read_json(tmp_path / "p.json", orient="split")
    expected = run.predict(pd.read_csv(tmp_path / "rows.csv"))
    assert_same_predictions(found, expected)


def test_runtime_encodes_unknown_and_missing_cells_as_training_does(
    run: mg.Run, bundle: Path
) -> None:
    rows = new_rows()
    arrays = load_bundle(bundle).preprocessor.encode_inputs(rows, base_dir=None, origin="rows")
    assert arrays["color"][3] == 0
    number = run.preprocessor.inputs[0]
    assert arrays["size"][4] == pytest.approx(0.0, abs=1e-6)  # the mean, standardised
    assert number.mean != 0.0
    expected = run.preprocessor.transform(rows, base_dir=None, origin="rows", with_targets=False)
    for name, array in arrays.items():
        assert np.array_equal(array, expected.inputs[name].numpy()), name
    assert_same_predictions(load_bundle(bundle).predict(rows), run.predict(rows))


def test_predictions_keep_the_row_index_and_any_batch_size(bundle: Path) -> None:
    rows = new_rows().set_index(pd.Index(range(100, 180)))
    loaded = load_bundle(bundle)
    whole = loaded.predict(rows)
    assert list(whole.index) == list(rows.index)
    pd.testing.assert_frame_equal(loaded.predict(rows, batch_size=7), whole, atol=1e-6)


def test_a_missing_column_names_it(bundle: Path) -> None:
    with pytest.raises(DataError, match="column 'color' not found") as refused:
        load_bundle(bundle).predict(new_rows().drop(columns=["color"]))
    assert ". The bundle " in str(refused.value) and "config" not in str(refused.value)


def test_incomplete_or_newer_bundles_are_refused(bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    (copy / "model.onnx").unlink()
    with pytest.raises(RunError, match=r"model\.onnx is missing"):
        load_bundle(copy)
    shutil.copy(bundle / "model.onnx", copy / "model.onnx")
    described = json.loads((copy / "bundle.json").read_text())
    (copy / "bundle.json").write_text(json.dumps({**described, "version": 99}))
    with pytest.raises(RunError, match="bundle version 99 is not supported"):
        load_bundle(copy)
    with pytest.raises(RunError, match="is not a folder"):
        load_bundle(tmp_path / "absent")


def test_cli_predicts_on_a_bundle_with_torch_unimportable(bundle: Path, tmp_path: Path) -> None:
    new_rows().to_csv(tmp_path / "rows.csv", index=False)
    command = (
        "import sys; sys.modules['torch'] = None; from megalith.cli import main; "
        f"sys.argv = ['megalith', 'predict', {str(bundle)!r}, '--data', 'rows.csv']; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", command], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("id,size,color,member,constant,label,")
    assert len(lines) == 81  # the header and one line per row


def test_training_without_torch_names_the_extra_to_install(tmp_path: Path) -> None:
    config = REPO / "examples" / "digits.yaml"
    command = (
        "import sys; sys.modules['torch'] = None; from megalith.cli import main; "
        f"sys.argv = ['megalith', 'train', {str(config)!r}, '-o', 'run']; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", command], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: this command needs torch, which is not installed here: "
        'pip install "megalith[train]"'
    ]
    assert not (tmp_path / "run").exists()


def test_a_missing_part_is_named_with_what_installs_it() -> None:
    from megalith.errors import missing_extra

    def hint(module: str) -> str | None:
        found = missing_extra(ModuleNotFoundError(f"No module named '{module}'", name=module))
        return None if found is None else str(found)

    assert hint("fastapi") == (
        'this command needs fastapi, which is not installed here: pip install "megalith[serve]"'
    )
    assert hint("onnx.checker") is not None and "megalith[export]" in str(hint("onnx.checker"))
    assert hint("pyarrow") is not None and "pip install pyarrow" in str(hint("pyarrow"))
    assert hint("requests") is None  # not ours: a real bug, shown with its traceback
