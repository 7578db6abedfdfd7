"""Structured pruning (megalith.compress.prune): a pruned run is physically smaller, loads from
its own directory alone (the original deleted), predicts like the in-memory pruned model,
exports and evaluates; bad requests are refused before any work; a damaged architecture
record is reported by name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_table, run_cli
from fastapi.testclient import TestClient
from rich.console import Console

import megalith as mg
from megalith.compress.channels import count_macs, prune_channels
from megalith.compress.prune import prune_run
from megalith.errors import ConfigError, RunError
from megalith.models import GPTConfig
from megalith.pipeline import train
from megalith.run import Run
from megalith.run_data import transform_split
from megalith.runtime import load_bundle
from megalith.serving import ServeSettings, build_app, load_backend

pytestmark = pytest.mark.slow  # each module fixture trains a small model
QUIET = Console(quiet=True)
TRAIN = {"epochs": 1, "batch_size": 64, "optimizer": {"name": "adamw", "lr": 0.01}}
TRAIN_FAST = {**TRAIN, "baselines": False}


def _digits_run(folder: Path) -> mg.Run:
    config = {
        "name": "digits-cnn",
        "data": {"source": "builtin:digits"},
        "inputs": [{"name": "image", "type": "image"}],
        "outputs": [{"name": "label", "type": "category"}],
        "model": {"arch": "cnn", "channels": [16, 32], "hidden": [32]},
        "train": TRAIN_FAST,
    }
    return mg.train(config, output_dir=folder / "source", console=QUIET)


@pytest.fixture(scope="module")
def cnn_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """A trained CNN on 8x8 digits and its pruned copy (the source's figures kept aside)."""
    folder = tmp_path_factory.mktemp("cnn")
    source = _digits_run(folder)
    pruned = prune_run(
        source, folder / "pruned", amount=0.5, finetune_epochs=1, console=QUIET, by="channels"
    )
    before = {"bytes": (source.path / "model.safetensors").stat().st_size}
    return source.path, pruned.path, before


def test_the_pruned_cnn_is_smaller_in_parameters_macs_and_file(cnn_pair) -> None:
    _, pruned, before = cnn_pair
    record = json.loads((pruned / "pruning.json").read_text())
    assert record["amount"] == 0.5 and record["finetune"]["epochs"] == 1
    assert record["parameters"]["after"] < 0.5 * record["parameters"]["before"]
    assert record["macs_per_row"]["after"] < 0.5 * record["macs_per_row"]["before"]
    assert (pruned / "model.safetensors").stat().st_size < 0.5 * before["bytes"]
    loaded = mg.load(pruned)
    assert sum(p.numel() for p in loaded.model.parameters()) == record["parameters"]["after"]
    convs = [m for m in loaded.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 16]  # 16, 32 halved
    widths = json.loads((pruned / "architecture.json").read_text())["modules"]
    assert widths["encoders.0.backbone.0"] == {"in_channels": 1, "out_channels": 8}
    for name in ("config.yaml", "preprocessor.json", "metrics.jsonl", "eval.json", "report.html"):
        assert (pruned / name).is_file(), name
    assert loaded.metrics["test"]["accuracy"] > 0.5  # fine-tuned, not broken


def test_the_pruned_run_loads_alone_and_predicts_exported(cnn_pair, tmp_path: Path) -> None:
    source, pruned, _ = cnn_pair
    original = mg.load(pruned)
    _, splits = original.data_splits()
    frame = splits["test"].head(40)
    expected = original.predict(frame)
    copy = tmp_path / "elsewhere"
    shutil.copytree(pruned, copy)
    moved = tmp_path / "source-gone"
    shutil.move(source, moved)  # the source run is nowhere to be found while the copy loads
    try:
        alone = mg.load(copy)
        pd.testing.assert_frame_equal(alone.predict(frame), expected)
        bundle = load_bundle(alone.export(tmp_path / "bundle"))  # verified against PyTorch
        exported = bundle.predict(frame)
        assert (exported["label"].to_numpy() == expected["label"].to_numpy()).mean() >= 0.97
        outcome = run_cli("evaluate", copy)
        assert outcome.code == 0, outcome.stderr
    finally:
        shutil.move(moved, source)


def test_a_fine_tuned_run_loads_exactly_like_the_trained_model(tmp_path: Path) -> None:
    """train(start_from=) on a table MLP: the in-memory result and its directory agree."""
    make_table().to_csv(tmp_path / "table.csv", index=False)
    config = {
        "name": "table",
        "data": {"source": str(tmp_path / "table.csv")},
        "inputs": [
            {"name": "size", "type": "number"},
            {"name": "color", "type": "category"},
            {"name": "member", "type": "binary"},
        ],
        "outputs": [{"name": "label", "type": "category"}],
        "model": {"arch": "mlp", "hidden": [32, 16]},
        "train": TRAIN_FAST,
    }
    source = mg.train(config, output_dir=tmp_path / "source", console=QUIET)
    table, splits = source.data_splits()
    rows = transform_split(source.config, source.preprocessor, splits["train"], table, "train")
    model = source.model
    before = count_macs(model, rows.inputs)
    prune_channels(model, rows.inputs, 0.5)  # in place: the source Run now holds it
    assert count_macs(model, rows.inputs) < before
    tuned = train(source.config, output_dir=tmp_path / "tuned", console=QUIET, start_from=source)
    assert tuned.preprocessor is not source.preprocessor  # a copy, not refitted
    assert json.loads((tmp_path / "tuned" / "preprocessor.json").read_text()) == json.loads(
        (tmp_path / "source" / "preprocessor.json").read_text()
    )
    shutil.rmtree(tmp_path / "source")
    loaded = Run.load(tmp_path / "tuned")
    tuned.model.eval()
    with torch.no_grad():
        expected, got = tuned.model(rows.inputs), loaded.model(rows.inputs)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert [m.out_features for m in loaded.model.combiner if isinstance(m, torch.nn.Linear)] == [
        16,
        8,
    ]
    frame = make_table(rows=12, seed=3)[["size", "color", "member"]]
    served = TestClient(build_app(load_backend(tmp_path / "tuned", "torch"), ServeSettings()))
    with served as client:  # `megalith serve RUN` on the pruned run alone
        answer = client.post("/predict", json={"rows": frame.to_dict(orient="records")})
    assert answer.status_code == 200, answer.text
    got = [row["label"] for row in answer.json()["predictions"]]
    assert got == loaded.predict(frame)["label"].tolist()


def test_a_text_transformer_loses_feed_forward_width_not_heads(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    words = ["good", "bad", "fine", "awful", "nice", "meh", "great", "poor"]
    frame = pd.DataFrame({"text": [" ".join(rng.choice(words, 6)) for _ in range(160)]})
    frame["label"] = np.where(frame.text.str.count("good|great|nice") >= 2, "pos", "neg")
    frame.to_csv(tmp_path / "text.csv", index=False)
    encoder = {"kind": "transformer", "layers": 1, "heads": 2}
    config = {
        "name": "text",
        "data": {"source": str(tmp_path / "text.csv")},
        "inputs": [{"name": "text", "type": "text", "embedding_dim": 16, "encoder": encoder}],
        "outputs": [{"name": "label", "type": "category"}],
        "model": {"arch": "mlp", "hidden": [16]},
        "train": TRAIN_FAST,
    }
    source = mg.train(config, output_dir=tmp_path / "source", console=QUIET)
    pruned = prune_run(
        source, tmp_path / "pruned", amount=0.5, finetune_epochs=1, console=QUIET, by="channels"
    )
    record = json.loads((pruned.path / "pruning.json").read_text())
    assert record["macs_per_row"]["after"] < record["macs_per_row"]["before"]
    assert record["scheme"] == {"by": "channels", "amount": 0.5, "allocation": "uniform per layer"}
    block = pruned.model.encoders[0].sequence.blocks[0]
    assert block.mlp[0].out_features == 32 and block.mlp[2].in_features == 32  # 64 halved
    assert block.attention.heads == 2 and block.attention.query.out_features == 16
    test = source.data_splits()[1]["test"]
    shutil.rmtree(tmp_path / "source")
    pd.testing.assert_frame_equal(mg.load(pruned.path).predict(test), pruned.predict(test))


@pytest.mark.parametrize("amount", [0, 1, -0.2, 1.5, True])
def test_a_bad_amount_is_refused_before_any_work(cnn_pair, tmp_path: Path, amount) -> None:
    source = mg.load(cnn_pair[0])
    with pytest.raises(ConfigError, match="between 0 and 1"):
        prune_run(source, tmp_path / "out", amount=amount, console=QUIET)
    assert not (tmp_path / "out").exists()


def test_an_unsupported_family_or_a_used_folder_is_refused(cnn_pair, tmp_path: Path) -> None:
    source = mg.load(cnn_pair[0])
    config = source.config.model_copy(update={"model": GPTConfig()})
    language_model = Run(source.path, config, source.preprocessor, source.model)
    with pytest.raises(RunError, match=r"handles model.arch mlp, cnn, resnet; this run is .* gpt"):
        prune_run(language_model, tmp_path / "out", console=QUIET)
    assert not (tmp_path / "out").exists()
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="holds other files"):
        prune_run(source, tmp_path / "used", console=QUIET)
    assert [p.name for p in (tmp_path / "used").iterdir()] == ["notes.txt"]
    with pytest.raises(RunError, match="source run"):
        prune_run(source, source.path, console=QUIET)
    with pytest.raises(ConfigError, match="finetune epochs"):
        prune_run(source, tmp_path / "out", finetune_epochs=0, console=QUIET)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "not valid JSON"),
        ('{"format": 7, "modules": {}}', "not an architecture record"),
        ('{"format": 1, "modules": {"nowhere.9": {"in_features": 1}}}', "'nowhere.9' is not"),
        (
            '{"format": 1, "modules": {"combiner.0": {"in_features": 8, "out_features": 9999}}}',
            "no larger than config.yaml",
        ),
    ],
)
def test_a_damaged_architecture_record_names_the_file(
    cnn_pair, tmp_path: Path, text: str, says: str
) -> None:
    copy = tmp_path / "run"
    shutil.copytree(cnn_pair[1], copy)
    (copy / "architecture.json").write_text(text)
    with pytest.raises(RunError, match=says) as caught:
        mg.load(copy)
    assert str(copy / "architecture.json") in str(caught.value)
    outcome = run_cli("predict", copy, "--data", copy / "missing.csv")
    assert outcome.code != 0 and "architecture.json" in outcome.stderr
    assert "Traceback" not in outcome.stderr


def test_a_lost_architecture_record_is_a_clear_mismatch(cnn_pair, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(cnn_pair[1], copy)
    (copy / "architecture.json").unlink()
    with pytest.raises(RunError, match=r"does not match the model in config\.yaml"):
        mg.load(copy)
