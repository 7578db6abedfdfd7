"""megalith.export: a verified ONNX bundle from a run; clear errors when it cannot be one."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from exported import train_tiny_run

import megalith as mg
from megalith.errors import RunError
from megalith.export.describe import graph_outputs
from megalith.export.verify import check_export


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> mg.Run:
    return train_tiny_run(tmp_path_factory.mktemp("export"))


@pytest.fixture(scope="module")
def bundle(run: mg.Run) -> Path:
    return run.export(run.path.parent / "bundle")


def test_bundle_holds_the_graph_the_preprocessor_and_a_description(
    run: mg.Run, bundle: Path
) -> None:
    assert sorted(p.name for p in bundle.iterdir()) == [
        "bundle.json",
        "model.onnx",
        "preprocessor.json",
    ]
    assert (bundle / "preprocessor.json").read_text() == (
        run.path / "preprocessor.json"
    ).read_text()
    described = json.loads((bundle / "bundle.json").read_text())
    assert [(i["name"], i["type"], i["dtype"]) for i in described["inputs"]] == [
        ("size", "number", "float32"),
        ("color", "category", "int64"),
        ("member", "binary", "float32"),
    ]
    label, big, score = described["outputs"]
    assert label["classes"] == ["high", "low", "mid"]
    assert big["threshold"] == 0.3  # the run's own threshold, not 0.5
    assert big["values"] == {"negative": "no", "positive": "yes"}
    encoder = run.preprocessor.outputs[2]
    assert score["units"] == {"mean": encoder.mean, "std": encoder.std}
    assert described["versions"]["onnxruntime"] == onnxruntime.__version__


def test_export_was_checked_on_the_test_rows_at_three_batch_sizes(bundle: Path) -> None:
    verified = json.loads((bundle / "bundle.json").read_text())["verified"]
    assert verified["split"] == "test"
    assert verified["rows"] == 60  # all of the 20% test split of 300 rows
    assert verified["batch_sizes"] == [1, 7, 64]
    assert set(verified["max_abs_difference"]) == {"label", "big", "score"}
    assert max(verified["max_abs_difference"].values()) <= 1e-4


def test_graph_batch_dimension_is_dynamic(bundle: Path) -> None:
    graph = onnx.load(str(bundle / "model.onnx")).graph
    for value in [*graph.input, *graph.output]:
        first = value.type.tensor_type.shape.dim[0]
        assert first.dim_param and not first.dim_value, value.name
    session = onnxruntime.InferenceSession(str(bundle / "model.onnx"))
    feed = {
        "input_size": np.zeros(130, np.float32),
        "input_color": np.ones(130, np.int64),
        "input_member": np.ones(130, np.float32),
    }
    label, big, score = session.run(None, feed)
    assert label.shape == (130, 3) and big.shape == (130,) and score.shape == (130,)


def test_a_graph_that_disagrees_with_pytorch_fails_the_check_naming_the_output(
    run: mg.Run, bundle: Path
) -> None:
    session = onnxruntime.InferenceSession(str(bundle / "model.onnx"))
    specs = run.preprocessor.input_specs
    rows = 20
    arrays = [
        np.linspace(-2, 2, rows, dtype=np.float32),
        np.arange(rows, dtype=np.int64) % 4,
        (np.arange(rows) % 2).astype(np.float32),
    ]
    names = ["input_size", "input_color", "input_member"]
    outputs = graph_outputs(run.preprocessor)
    assert check_export(run.model, session, specs, arrays, names, outputs)["rows"] == rows
    bias = run.model.heads[2].linear.bias  # the 'score' head
    try:
        with torch.no_grad():
            bias += 0.01  # every standardised score moves by 0.01 in PyTorch only
        with pytest.raises(RunError, match=r"output 'score' differs .* by 1\.00e-02"):
            check_export(run.model, session, specs, arrays, names, outputs)
    finally:
        with torch.no_grad():
            bias -= 0.01


def test_export_refuses_an_existing_folder_and_an_unknown_format(
    run: mg.Run, bundle: Path, tmp_path: Path
) -> None:
    with pytest.raises(RunError, match="already holds a bundle; pass --overwrite"):
        run.export(bundle)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="holds other files"):
        run.export(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    with pytest.raises(RunError, match="--format tflite: unknown"):
        run.export(tmp_path / "new", format="tflite")
    assert not (tmp_path / "new").exists()


def test_a_model_of_no_exportable_family_is_one_line(run: mg.Run) -> None:
    unknown = mg.Run(run.path, run.config, run.preprocessor, torch.nn.Linear(3, 3))
    with pytest.raises(
        RunError, match=r"exporting a Linear model \(model\.arch mlp\) is not"
    ) as error:
        unknown.export(run.path.parent / "never")
    assert "\n" not in str(error.value)
    assert not (run.path.parent / "never").exists()


def test_a_flipped_label_fails_the_check_even_within_the_tolerance(
    run: mg.Run, bundle: Path
) -> None:
    session = onnxruntime.InferenceSession(str(bundle / "model.onnx"))
    specs = run.preprocessor.input_specs
    arrays = [
        np.array([0.5], np.float32),
        np.array([1], np.int64),
        np.array([1.0], np.float32),
    ]
    names = ["input_size", "input_color", "input_member"]
    (onnx_big,) = session.run(["output_big"], dict(zip(names, arrays, strict=True)))
    probability = float(1 / (1 + np.exp(-onnx_big[0])))
    bias = run.model.heads[1].linear.bias  # the 'big' head
    outputs = graph_outputs(run.preprocessor)
    # PyTorch's probability moves up by p (1 - p) 1e-5; a threshold halfway flips the label
    halfway = probability + 0.5 * probability * (1 - probability) * 1e-5
    outputs[1] = dataclasses.replace(outputs[1], threshold=halfway)
    try:
        with torch.no_grad():
            bias += 1e-5
        with pytest.raises(RunError, match="'big': the predicted label differs on 1 of 1 rows"):
            check_export(run.model, session, specs, arrays, names, outputs)
    finally:
        with torch.no_grad():
            bias -= 1e-5
