"""`megalith compress`: int8 bundles against their fp32 bundle on trained models, the bundle
served and predicted unchanged, the chain's gates on a step built to be worse, and the CLI's
errors before any work."""

from __future__ import annotations

import base64
import importlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import run_cli
from fastapi.testclient import TestClient
from PIL import Image
from rich.console import Console
from safetensors.torch import load_file, save_file

import megalith as mg
from megalith.compress import Compression, quantize_run
from megalith.compress.quantize import calibration_arrays, compare_graphs
from megalith.runtime import load_bundle
from megalith.serving import ServeSettings, build_app, load_backend

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

PROBABILITY_TOLERANCE = 0.05
"""Largest difference of a class probability between the int8 and the fp32 bundle."""
QUIET = Console(quiet=True)


def _digits(arch: dict, epochs: int) -> dict:
    return {
        "name": f"digits-{arch['arch']}",
        "data": {"source": "builtin:digits", "split": {"val": 0.1, "test": 0.2}},
        "inputs": [{"name": "image", "type": "image"}],
        "outputs": [{"name": "label", "type": "category"}],
        "model": arch,
        "train": {"epochs": epochs, "batch_size": 32, "baselines": False,
                  "optimizer": {"name": "adamw", "lr": 3e-3}},
    }  # fmt: skip


@pytest.fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> mg.Run:
    """An MLP of 2 x 256 units on the 8x8 digits (~85k parameters): trains in seconds."""
    folder = tmp_path_factory.mktemp("mlp")
    config = _digits({"arch": "mlp", "hidden": [256, 256]}, epochs=6)
    return mg.train(config, output_dir=folder / "run", console=QUIET)


@pytest.fixture(scope="module")
def cnn(tmp_path_factory: pytest.TempPathFactory) -> mg.Run:
    folder = tmp_path_factory.mktemp("cnn")
    config = _digits({"arch": "cnn", "channels": [16, 32], "hidden": [64]}, epochs=6)
    return mg.train(config, output_dir=folder / "run", console=QUIET)


def _check_parity(run: mg.Run, bundle: Path, fp32: Path) -> dict:
    """The int8 graph against the fp32 graph on the whole test split."""
    description = json.loads((bundle / "bundle.json").read_text())
    names = [entry["graph_name"] for entry in description["inputs"]]
    arrays = calibration_arrays(run, "test", 10_000)
    checked = compare_graphs(fp32 / "model.onnx", bundle / "model.onnx", names, arrays,
                             description)  # fmt: skip
    assert checked["rows"] >= 300
    assert checked["label_agreement"]["label"] >= 0.99, checked
    assert checked["max_abs_difference"]["label"] <= PROBABILITY_TOLERANCE, checked
    return checked


def test_dynamic_int8_of_an_mlp_agrees_with_fp32_and_is_smaller(
    mlp: mg.Run, tmp_path: Path
) -> None:
    assert mlp.metrics["test"]["accuracy"] >= 0.9
    fp32 = mlp.export(tmp_path / "fp32")
    bundle = quantize_run(mlp, tmp_path / "int8", fp32_bundle=fp32, console=QUIET)
    description = json.loads((bundle / "bundle.json").read_text())
    assert description["quantization"]["scheme"] == "dynamic"
    ops = {node.op_type for node in onnx.load(str(bundle / "model.onnx")).graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops, ops
    _check_parity(mlp, bundle, fp32)
    # weights are ~all of this graph: int8 is about a quarter of the fp32 file
    assert (bundle / "model.onnx").stat().st_size < 0.35 * (fp32 / "model.onnx").stat().st_size


def test_static_int8_of_a_cnn_agrees_and_serves_and_predicts_unchanged(
    cnn: mg.Run, tmp_path: Path
) -> None:
    assert cnn.metrics["test"]["accuracy"] >= 0.9
    fp32 = cnn.export(tmp_path / "fp32")
    bundle = quantize_run(cnn, tmp_path / "int8", console=QUIET)  # exports its own fp32 first
    description = json.loads((bundle / "bundle.json").read_text())
    assert description["quantization"]["scheme"] == "static"
    assert description["quantization"]["calibration_rows"] == 256
    ops = [node.op_type for node in onnx.load(str(bundle / "model.onnx")).graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    _check_parity(cnn, bundle, fp32)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fp32", "int8"]  # no scratch left
    _, splits = cnn.data_splits()
    rows = splits["test"].iloc[:20]
    predicted = load_bundle(bundle).predict(rows)
    expected = cnn.predict(rows)
    assert np.mean(predicted["label"].to_numpy() == expected["label"].to_numpy()) >= 0.95
    backend = load_backend(bundle, "auto")
    with TestClient(build_app(backend, ServeSettings())) as client:
        sent = [{"image": _png(pixels)} for pixels in rows["image"].tolist()[:2]]
        answer = client.post("/predict", json={"rows": sent})
    assert answer.status_code == 200, answer.text
    served = [row["label"] for row in answer.json()["predictions"]]
    assert served == predicted["label"].tolist()[:2]


def _png(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _noisy_weights(run: mg.Run, folder: Path, console: Console) -> mg.Run:
    """A step built to be worse: the run's weights with heavy Gaussian noise added."""
    shutil.copytree(run.path, folder, ignore=shutil.ignore_patterns("bundle", "checkpoints"))
    weights = load_file(folder / "model.safetensors")
    generator = torch.Generator().manual_seed(0)
    for name, weight in weights.items():
        if weight.is_floating_point() and weight.numel() > 1:
            noise = torch.randn(weight.shape, generator=generator)
            weights[name] = weight + 2.0 * weight.std() * noise
    save_file(weights, folder / "model.safetensors")
    return mg.load(folder)


def test_the_gate_rejects_a_worse_step_and_the_chain_goes_on_from_the_original(
    mlp: mg.Run, tmp_path: Path
) -> None:
    result = mg.compress(mlp, [_noisy_weights, "quantize"], tmp_path / "out",
                         timing_runs=5, console=QUIET)  # fmt: skip
    original, noisy, quantized = result.models
    assert [m["name"] for m in result.models] == ["original", "noisy_weights", "quantize"]
    assert not noisy["verdict"]["accepted"]
    assert any("points below the original" in r for r in noisy["verdict"]["reasons"])
    assert noisy["agreement"] < 0.9
    assert quantized["verdict"]["previous"] == "original"  # not the rejected model
    assert abs(quantized["metrics"]["accuracy"] - original["metrics"]["accuracy"]) <= 0.02
    saved = Compression.load(tmp_path / "out")
    assert saved.summary["models"][1]["verdict"]["reasons"] == noisy["verdict"]["reasons"]
    for name in ("original-fp32", "1-noisy_weights", "2-quantize", "compression.html"):
        assert (tmp_path / "out" / name).exists(), name
    assert "noisy_weights" in result.page.read_text() and "rejected" in result.page.read_text()
    table = result.table
    assert list(table.index) == ["original", "noisy_weights", "quantize"]
    assert table.loc["quantize", "scheme"] == "dynamic"


def test_the_whole_chain_distill_prune_quantize_end_to_end(mlp: mg.Run, tmp_path: Path) -> None:
    result = mg.compress(mlp, ["distill", "prune", "quantize"], tmp_path / "out", force=True,
                         finetune_epochs=1, timing_runs=5, console=QUIET)  # fmt: skip
    assert [m["name"] for m in result.models] == ["original", "distill", "prune", "quantize"]
    params = {m["name"]: m["parameters"] for m in result.models}
    assert params["original"] > params["distill"] > params["prune"]
    student = mg.load(tmp_path / "out" / "1-distill")
    assert student.config.model.hidden == [128, 128]  # half the teacher's 2 x 256
    assert json.loads((student.path / "teacher.json").read_text())["path"] == str(mlp.path)
    pruned = tmp_path / "out" / "2-prune"
    assert (pruned / "architecture.json").is_file() and mg.load(pruned).config.model.hidden
    assert result.best == tmp_path / "out" / "3-quantize"
    quantized = result.models[3]
    assert quantized["scheme"] == "dynamic" and quantized["verdict"]["previous"] == "prune"
    assert quantized["agreement"] >= 0.9  # with the original, after three steps
    records = [p for p in (tmp_path / "out").rglob("*") if p.suffix in (".json", ".html")]
    record = json.loads((pruned / "pruning.json").read_text())
    assert record["source"] == str(student.path) and record["scheme"]["by"] == "macs"
    macs = record["macs_per_row"]  # --prune 0.5 (the default): half the MACs, whole blocks
    assert macs["after"] <= 0.5 * macs["before"] and record["scheme"]["macs_ratio"] <= 0.5
    assert all(after % 16 == 0 for _, after in record["scheme"]["widths"].values())
    assert not [p for p in records if "/.out." in p.read_text(encoding="utf-8")]  # staged path


def test_force_takes_a_rejected_step_forward(mlp: mg.Run, tmp_path: Path) -> None:
    result = mg.compress(mlp, [_noisy_weights], tmp_path / "out", force=True, timing_runs=5,
                         console=QUIET)  # fmt: skip
    verdict = result.models[1]["verdict"]
    assert not verdict["accepted"] and verdict["taken_forward"]
    assert result.best == tmp_path / "out" / "1-noisy_weights"
    assert mg.load(result.best).path == result.best  # a run directory that loads alone


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "quantize,prune"], "out of order"),
        (["--prune", "1.5"], "compress.prune: Input should be less than 1"),
        (["--quantize", "int4"], "--quantize int4: the format is int8"),
    ],
)
def test_bad_options_fail_before_any_work_and_leave_out_untouched(
    mlp: mg.Run, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    outcome = run_cli("compress", mlp.path, *args, "-o", out)
    assert outcome.code == 2 and message in outcome.stderr, outcome.stderr
    assert "Traceback" not in outcome.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_a_step_without_its_package_names_the_extra_before_any_work(
    mlp: mg.Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "torch_pruning" else find_spec(name, *a),
    )
    outcome = run_cli("compress", mlp.path, "--prune", "0.3", "-o", tmp_path / "out")
    assert outcome.code != 0 and 'pip install "megalith[compress]"' in outcome.stderr
    assert not (tmp_path / "out").exists()


def test_a_bundle_is_refused_with_what_to_give_instead(mlp: mg.Run, tmp_path: Path) -> None:
    bundle = mlp.export(tmp_path / "bundle")
    outcome = run_cli("compress", bundle, "-o", tmp_path / "out")
    assert outcome.code == 2 and "is an inference bundle" in outcome.stderr
    assert not (tmp_path / "out").exists()


def test_the_cli_writes_the_table_from_a_config_block(mlp: mg.Run, tmp_path: Path) -> None:
    config = tmp_path / "compress.yaml"
    config.write_text("compress:\n  steps: [quantize]\n  timing_runs: 5\n  max_metric_drop: 2\n")
    outcome = run_cli("compress", mlp.path, "--config", config, "-o", tmp_path / "out")
    assert outcome.code == 0, outcome.stderr
    summary = json.loads((tmp_path / "out" / "compression.json").read_text())
    assert summary["settings"]["max_metric_drop"] == 2
    assert summary["watched"]["metric"] == "accuracy"
    assert [m["name"] for m in summary["models"]] == ["original", "quantize"]
    for model in summary["models"]:
        assert set(model["latency_ms"]) == {"1", "32"} and model["parameters"] > 80_000
        assert model["macs"] > 80_000 and model["metrics"]["accuracy"] >= 0.85
    assert (tmp_path / "out" / "compression.html").is_file()
    # run again without --overwrite: refused, the first compression kept
    again = run_cli("compress", mlp.path, "--config", config, "-o", tmp_path / "out")
    assert again.code == 2 and "--overwrite" in again.stderr
    # a step failing half-way, with --overwrite: the earlier compression is kept as it was
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir() if p.is_file()}

    def _breaks(run: mg.Run, folder: Path, console: Console) -> mg.Run:
        folder.mkdir()
        raise mg.RunError("this step broke")

    with pytest.raises(mg.RunError, match="this step broke"):
        mg.compress(mlp, [_breaks], tmp_path / "out", overwrite=True, console=QUIET)
    after = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir() if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compress.yaml", "out"]


def test_a_step_is_timed_in_turn_with_the_model_it_is_judged_against(
    mlp: mg.Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = importlib.import_module("megalith.compress.record")  # mg.compress is a function
    timed_in_turn = record.time_bundles_in_turn
    calls: list[tuple[list[str], list[dict[str, float]]]] = []

    def spy(bundles: list, **settings: int) -> list[dict[str, float]]:
        found = timed_in_turn(bundles, **settings)
        calls.append(([bundle.name for bundle, _ in bundles], found))
        return found

    monkeypatch.setattr(record, "time_bundles_in_turn", spy)
    result = mg.compress(mlp, ["quantize"], tmp_path / "out", timing_runs=5, console=QUIET)
    (pair, (before, after)), (everyone, final) = calls
    assert pair == ["original-fp32", "1-quantize"] and everyone == pair
    speedup = result.models[1]["verdict"]["speedup_vs_previous"]
    assert speedup == {size: round(before[size] / after[size], 4) for size in ("1", "32")}
    assert [model["latency_ms"] for model in result.models] == final  # re-timed at the end
