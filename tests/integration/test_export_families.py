"""Every feature-model family exports, and the runtime predicts as the run: images (cnn,
resnet, vit), text through each encoder, number sequences. Tiny runs of a few steps."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_time_series import series_table

import megalith as mg
from megalith.runtime import load_bundle

WORDS = ["good", "great", "bad", "awful", "movie", "plot", "the", "a", "was", "very"]


def text_table(rows: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, rng.integers(1, 14))) for _ in range(rows)]
    good = [t.count("good") + t.count("great") >= t.count("bad") + t.count("awful") for t in texts]
    return pd.DataFrame({"text": texts, "label": np.where(good, "pos", "neg")})


def case(name: str, folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    """(data, inputs, the target's name) of one family."""
    if name in ("cnn", "resnet", "vit"):
        digits = {"source": "builtin:digits", "split": {"val": 0.05, "test": 0.05}}
        return digits, [{"name": "image", "type": "image"}], "label"
    if name == "sequence":
        series_table(rows=100).to_csv(folder / "series.csv", index=False)
        series = {
            "name": "series",
            "type": "sequence",
            "embedding_dim": 8,
            "encoder": {"hidden": 8},
        }
        return {"source": str(folder / "series.csv")}, [series], "shape"
    text_table().to_csv(folder / "text.csv", index=False)
    encoder = {"kind": name.removeprefix("text-"), "hidden": 8, "heads": 2}
    text = {"name": "text", "type": "text", "embedding_dim": 16, "encoder": encoder}
    return {"source": str(folder / "text.csv")}, [text], "label"


MODELS = {
    "cnn": {"arch": "cnn", "channels": [4, 8], "hidden": [16]},
    "resnet": {"arch": "resnet", "channels": [4, 8], "blocks": [1, 1]},
    "vit": {"arch": "vit", "patch_size": 4, "dim": 16, "depth": 2, "heads": 2},
}
FAMILIES = ["cnn", "resnet", "vit", "sequence"] + [
    f"text-{kind}" for kind in ("bag", "cnn", "rnn", "lstm", "gru", "transformer")
]


@pytest.mark.slow  # 5-25 s each on a shared 2-core CPU
@pytest.mark.parametrize("family", FAMILIES)
def test_family_exports_and_the_runtime_predicts_as_the_run(family: str, tmp_path: Path) -> None:
    data, inputs, target = case(family, tmp_path)
    output_type = "binary" if family.startswith("text") else "category"
    config = {
        "name": family,
        "data": data,
        "inputs": inputs,
        "outputs": [{"name": target, "type": output_type}],
        "model": MODELS.get(family, {"arch": "mlp", "hidden": [8]}),
        "train": {"epochs": 1, "max_steps": 3, "batch_size": 32},
    }
    run = mg.train(config, output_dir=tmp_path / "run")
    bundle = run.export(tmp_path / "bundle")
    verified = json.loads((bundle / "bundle.json").read_text())["verified"]
    assert max(verified["max_abs_difference"].values()) <= 1e-4
    if family.startswith("text") and family != "text-rnn":
        assert len(verified["lengths"]) == 2  # the fitted length and a shorter cut
    _, splits = run.data_splits()
    test = splits["test"].drop(columns=[target])
    found, expected = load_bundle(bundle).predict(test), run.predict(test)
    assert found[target].tolist() == expected[target].tolist()
    probabilities = [c for c in expected.columns if "_prob_" in c]
    assert (found[probabilities] - expected[probabilities]).abs().to_numpy().max() <= 1e-4


@pytest.mark.slow  # the dynamo exporter traces BERT in ~25 s on a shared 2-core CPU
def test_pretrained_classifier_with_lora_exports_merged(tmp_path: Path) -> None:
    from pretrained_models import save_tiny_bert, topic_table

    table = topic_table(120)
    table.to_csv(tmp_path / "topics.csv", index=False)
    save_tiny_bert(tmp_path / "bert", table.text)
    config = {
        "name": "topics",
        "data": {"source": str(tmp_path / "topics.csv")},
        "inputs": [{"name": "text", "type": "text"}],
        "outputs": [{"name": "topic", "type": "category"}],
        "model": {"arch": "pretrained", "path": str(tmp_path / "bert"), "lora": {"rank": 4}},
        "train": {"epochs": 1, "max_steps": 3, "batch_size": 16, "optimizer": {"lr": 1e-2}},
    }
    run = mg.train(config, output_dir=tmp_path / "run")
    bundle = run.export(tmp_path / "bundle")
    assert "lora" not in (bundle / "model.onnx").read_bytes().decode("latin-1").lower()
    test = run.data_splits()[1]["test"].drop(columns=["topic"])
    found, expected = load_bundle(bundle).predict(test), run.predict(test)
    assert found["topic"].tolist() == expected["topic"].tolist()
    probabilities = [c for c in expected.columns if "_prob_" in c]
    assert (found[probabilities] - expected[probabilities]).abs().to_numpy().max() <= 1e-4


@pytest.mark.slow  # a few training steps, an export and a torch-free process
def test_image_files_are_decoded_and_resized_as_in_training(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    (tmp_path / "img").mkdir()
    records = []
    for i in range(60):
        side = 16 if i % 3 else 22  # every third image is resized to the first one's 16x16
        pixels = rng.integers(0, 255, (side, side, 3)).astype(np.uint8)
        Image.fromarray(pixels).save(tmp_path / "img" / f"{i}.png")
        records.append({"picture": f"img/{i}.png", "label": "ab"[i % 2]})
    pd.DataFrame(records).to_csv(tmp_path / "table.csv", index=False)
    config = {
        "data": {"source": str(tmp_path / "table.csv"), "split": {"val": 0.2, "test": 0.2}},
        "inputs": [{"name": "picture", "type": "image"}],
        "outputs": [{"name": "label", "type": "category"}],
        "model": {"arch": "cnn", "channels": [4], "hidden": [8]},
        "train": {"epochs": 1, "max_steps": 2, "batch_size": 16},
    }
    run = mg.train(config, output_dir=tmp_path / "run")
    bundle = run.export(tmp_path / "bundle")
    script = (
        "import sys; sys.modules['torch'] = None\n"
        "from megalith.runtime import load_bundle\n"
        "p = load_bundle(sys.argv[1]).predict(sys.argv[2])\n"
        "p.to_json(sys.argv[3], orient='split')\n"
    )
    table, found_json = tmp_path / "table.csv", tmp_path / "found.json"
    done = subprocess.run(
        [sys.executable, "-c", script, bundle, table, found_json], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    found = pd.read_json(found_json, orient="split")
    expected = run.predict(table)
    assert found["label"].tolist() == expected["label"].tolist()
    assert np.abs(found["label_prob_a"] - expected["label_prob_a"]).max() <= 1e-4


@pytest.mark.slow  # training a tiny GPT and exporting its step: ~40 s on a shared 2-core CPU
def test_gpt_step_exports_and_the_bundle_writes_the_runs_greedy_text(tmp_path: Path) -> None:
    from test_language_model import write_corpus

    from megalith.errors import RunError
    from megalith.generation import Sampling

    write_corpus(tmp_path / "corpus", files=6)
    config = {
        "name": "tiny-gpt",
        "data": {
            "source": str(tmp_path / "corpus"),
            "format": "text",
            "split": {"val": 0.2, "test": 0.2},
        },
        "outputs": [{"name": "text", "type": "text", "tokenizer": "char", "vocab_size": 64}],
        "model": {"arch": "gpt", "context": 16, "layers": 1, "heads": 2, "dim": 16},
        "train": {"epochs": 1, "max_steps": 20, "batch_size": 16, "optimizer": {"lr": 0.01}},
    }
    run = mg.train(config, output_dir=tmp_path / "run")
    bundle = run.export(tmp_path / "bundle")
    described = json.loads((bundle / "bundle.json").read_text())
    assert described["task"] == "language_model"
    assert described["inputs"][0]["length"] == 16
    assert described["verified"]["lengths"] == [16, 8]
    loaded = load_bundle(bundle)
    # 40 tokens: past the 16-token window, so the window's sliding is compared too
    greedy = "".join(run.generate("the cat", max_new_tokens=40, sampling=Sampling(temperature=0)))
    assert loaded.generate("the cat", max_new_tokens=40, temperature=0) == greedy
    sampled = loaded.generate("the", max_new_tokens=20, temperature=1.0, top_k=5, seed=3)
    assert sampled == loaded.generate("the", max_new_tokens=20, temperature=1.0, top_k=5, seed=3)
    with pytest.raises(RunError, match="holds a language model: use generate"):
        loaded.predict(pd.DataFrame({"text": ["the cat"]}))


@pytest.mark.slow  # a tiny GPT-2 (one step of training) traced by the dynamo exporter: ~20 s
def test_pretrained_language_model_step_exports_and_writes_the_runs_greedy_text(
    tmp_path: Path,
) -> None:
    from pretrained_models import save_tiny_gpt2, topic_table

    from megalith.generation import Sampling

    table = topic_table(200, seed=1)
    (tmp_path / "corpus").mkdir()
    for i in range(4):
        lines = "\n".join(table.text[i * 50 : (i + 1) * 50])
        (tmp_path / "corpus" / f"part{i}.txt").write_text(lines + "\n", encoding="utf-8")
    save_tiny_gpt2(tmp_path / "gpt2", table.text)
    config = {
        "name": "tiny-gpt2",
        "data": {
            "source": str(tmp_path / "corpus"),
            "format": "text",
            "split": {"val": 0.25, "test": 0.25},
        },
        "outputs": [{"name": "text", "type": "text"}],
        "model": {"arch": "pretrained", "path": str(tmp_path / "gpt2"), "context": 16},
        # all but untrained: the random model's greedy text varies with the prompt
        "train": {"epochs": 1, "max_steps": 1, "batch_size": 8, "optimizer": {"lr": 1e-6}},
    }
    run = mg.train(config, output_dir=tmp_path / "run")
    bundle = run.export(tmp_path / "bundle")
    described = json.loads((bundle / "bundle.json").read_text())
    assert described["task"] == "language_model" and described["inputs"][0]["length"] == 16
    assert described["verified"]["max_abs_difference"]["text"] <= 1e-4
    loaded = load_bundle(bundle)
    texts = []
    for prompt in ("the", "team goal", "", "bank"):
        # 40 tokens: past the 16-token window; byte-level BPE: partial characters too
        greedy = "".join(run.generate(prompt, max_new_tokens=40, sampling=Sampling(temperature=0)))
        assert loaded.generate(prompt, max_new_tokens=40, temperature=0) == greedy, prompt
        texts.append(greedy)
    assert max(len(text) for text in texts) >= 10 and len(set(texts)) >= 2, texts
