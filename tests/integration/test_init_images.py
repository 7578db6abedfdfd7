"""`megalith init` + `megalith train` on characters rendered in fonts the model never trained on."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml
from conftest import REPO, run_cli

_spec = importlib.util.spec_from_file_location("small_images", REPO / "benchmarks/small_images.py")
assert _spec is not None and _spec.loader is not None
small_images = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(small_images)


@pytest.mark.slow
def test_init_then_train_reads_unseen_fonts_far_above_chance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if len(small_images.font_files()) < 10:
        pytest.skip("needs 10 fonts under /usr/share/fonts")
    # 6 characters in 10 fonts for train (60 images), 4 other fonts for test, on 40x32 canvases
    csv = small_images.fonts_table(
        tmp_path / "chars", classes=6, train_fonts=10, test_fonts=4, size=(40, 32)
    )
    monkeypatch.chdir(tmp_path)
    init = run_cli("init", csv, "--target", "label", "--output", "chars.yaml")
    assert init.code == 0, init.stderr
    config = yaml.safe_load(Path("chars.yaml").read_text())
    assert config["inputs"][0]["max_side"] == 32 and config["inputs"][0]["augment"]
    assert config["train"]["schedule"]["name"] == "cosine"
    # init asks for ~1,000 steps; a test affords ~200 of them, too few to stop early on
    # a val split of six images
    train = run_cli(
        "train",
        "chars.yaml",
        "-o",
        "run",
        "--set",
        "train.epochs=30",
        "--set",
        "train.batch_size=8",
        "--set",
        "train.baselines=false",
        "--set",
        "train.early_stop=null",
    )
    assert train.code == 0, train.stderr
    evaluation = yaml.safe_load(Path("run/eval.json").read_text())
    accuracy = evaluation["test"]["accuracy"]
    assert accuracy >= 0.5, accuracy  # chance: 0.167
