"""Every example config that predicts rows (seq2seq included): the bundle predicts the run's test
split as the run does. (Language models: test_export_families.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO

import megalith as mg
from megalith.runtime import load_bundle

WRITE_TEXT = {"python_gpt"}
RECOMMENDERS = {"planted_recommender"}  # top-k lists, not rows: tests/integration/test_recommend*
SPEECH = {"spoken_digit_strings"}  # trained by tests/integration/test_asr_train.py; the bundle of
# an asr run (log-mel + encoder + CTC head) is tested in tests/integration/test_asr_transcribe.py
EXAMPLES = [
    p
    for p in sorted((REPO / "examples").glob("*.yaml"))
    if p.stem not in WRITE_TEXT | RECOMMENDERS | SPEECH
]


@pytest.mark.slow  # a few training steps and an export per example
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_bundle_predicts_the_test_split_as_the_run(example: Path, tmp_path: Path) -> None:
    overrides = ["train.epochs=1", "train.max_steps=3"]
    run = mg.train(example, output_dir=tmp_path / "run", overrides=overrides)
    bundle = run.export(tmp_path / "bundle")
    test = run.data_splits()[1]["test"]
    targets = [output.name for output in run.config.outputs]
    rows = test.drop(columns=targets)
    found, expected = load_bundle(bundle).predict(rows), run.predict(rows)
    assert list(found.columns) == list(expected.columns)
    for column in expected.columns:
        if expected[column].dtype.kind == "f":
            assert (found[column] - expected[column]).abs().max() <= 1e-4, column
        else:
            assert found[column].tolist() == expected[column].tolist(), column
