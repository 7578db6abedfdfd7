"""Speech recognition end to end on digit strings synthesised by espeak-ng: a recognizer overfits a
handful of utterances to CER 0; `init` -> train -> eval.json WER / CER -> predict transcripts ->
report; exact resume; and rows CTC cannot align stopped before step 0."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from conftest import CliResult
from safetensors.torch import load_file

import megalith as mg
from megalith.data.features.audio import AudioInput
from megalith.data.features.text import TextOutput
from megalith.data.preprocess import Preprocessor
from megalith.data.spoken_digit_strings import make_spoken_digit_strings
from megalith.evaluate.speech import error_rates
from megalith.models import ASRConfig, build_model
from megalith.models.asr import ctc_loss, greedy_ctc

Cli = Callable[..., CliResult]


@pytest.fixture(scope="module")
def strings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 clips: 5 voices x 6 strings of 3-7 digits at 8 kHz (a few seconds to make)."""
    folder = tmp_path_factory.mktemp("strings")
    return make_spoken_digit_strings(folder, speakers=5, strings=6, test_speakers=1, val_speakers=1)


@pytest.mark.slow  # some 50 steps of a small recognizer on four clips
def test_a_recognizer_overfits_a_handful_of_utterances_to_cer_zero(strings: Path) -> None:
    torch.manual_seed(0)
    table_rows = pd.read_csv(strings)
    frame = table_rows.loc[table_rows["text"].str.len().sort_values(kind="stable").index[:4]]
    inputs = [AudioInput(name="audio")]
    outputs = [TextOutput(name="text", tokenizer="char")]
    pre = Preprocessor.fit(inputs, outputs, frame, base_dir=strings.parent, origin="strings")
    table = pre.transform(frame, base_dir=strings.parent, origin="strings")
    config = ASRConfig(dim=64, layers=1, heads=4, channels=32, dropout=0.0)
    model = build_model(config, pre.input_specs, pre.output_specs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    references = list(frame["text"])
    written: list[str] = []
    for step in range(400):
        model.train()
        loss = ctc_loss(model(table.inputs)["text"], table.targets["text"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 10 == 9:
            model.eval()
            with torch.no_grad():
                ids = greedy_ctc(model(table.inputs)["text"])
            written = list(pre.decode({"text": ids})["text"])
            if written == references:
                break
    assert written == references, f"after {step + 1} steps: {written} vs {references}"
    assert error_rates(written, references) == {"wer": 0.0, "cer": 0.0}


def _config(strings: Path, folder: Path, **train: object) -> Path:
    """A small recognizer's config for the table (what init writes, shrunk to quick steps)."""
    config = {
        "name": "strings",
        "data": {"source": str(strings), "split": {"column": "split"}},
        "inputs": [{"name": "audio", "type": "audio", "augment": {}}],
        "outputs": [{"name": "text", "type": "text", "tokenizer": "char"}],
        "model": {"arch": "asr", "dim": 32, "layers": 1, "heads": 4, "channels": 8},
        "train": {"epochs": 1, "batch_size": 8, **train},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow  # three `megalith init` processes
def test_init_writes_a_recognizer_for_recordings_and_transcripts(strings: Path, cli: Cli) -> None:
    written = cli("init", strings, "--target", "text")
    assert written.returncode == 0, written.stderr
    config = yaml.safe_load(written.stdout)
    assert config["model"]["arch"] == "asr"
    assert config["inputs"] == [
        {
            "name": "audio",
            "type": "audio",
            "sample_rate": 8000,
            "augment": {"gain_db": 6.0, "time_masks": 2, "time_mask_width": 10},
            "duration": config["inputs"][0]["duration"],
        }
    ]
    longest = max(sf_seconds(strings.parent / p) for p in pd.read_csv(strings)["audio"])
    assert longest <= config["inputs"][0]["duration"] < longest + 0.1  # never cut
    assert config["outputs"] == [{"name": "text", "type": "text", "tokenizer": "char"}]
    assert config["data"]["split"] == {"column": "split"}
    assert config["train"]["early_stop"]["metric"] == "val/cer"
    assert config["train"]["threads"] == 1  # a few minutes of speech: one CPU thread
    assert "not inputs of a recognizer: speaker" in written.stderr
    assert "classes" not in written.stderr  # no classifier's notes about the target
    # single words are labels: a classifier, not a recognizer
    frame = pd.read_csv(strings)
    frame["text"] = frame["text"].str.split().str[0]
    frame.to_csv(strings.parent / "words.csv", index=False)
    labels = yaml.safe_load(cli("init", strings.parent / "words.csv", "--target", "text").stdout)
    assert labels["model"]["arch"] == "crnn" and labels["outputs"][0]["type"] == "category"


def sf_seconds(path: Path) -> float:
    import soundfile

    info = soundfile.info(str(path))
    return info.frames / info.samplerate


@pytest.mark.slow  # two short training runs and a resumed one
def test_train_scores_predicts_reports_and_resumes_exactly(strings: Path, tmp_path: Path) -> None:
    config = _config(strings, tmp_path, epochs=2)
    run = mg.train(config, output_dir=tmp_path / "run")
    scores = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert set(scores["test"]) == {"loss", "wer", "cer"}
    assert scores["test"]["wer"] >= 0 and scores["test"]["loss"] > 0
    report = (tmp_path / "run" / "report.html").read_text()
    assert "Worst utterances" in report and "WER per speaker" in report and ">s04<" in report
    rows = pd.read_csv(strings).drop(columns=["text", "split"])
    rows["audio"] = [str(strings.parent / p) for p in rows["audio"]]
    predicted = run.predict(rows)
    assert predicted.columns.tolist() == ["text"] and len(predicted) == len(rows)
    assert all(isinstance(text, str) for text in predicted["text"])
    # one epoch, then resumed for the second: the same weights as two epochs straight
    mg.train(config, output_dir=tmp_path / "part", overrides=["train.epochs=1"])
    mg.train(resume=tmp_path / "part", overrides=["train.epochs=2"])
    whole = load_file(tmp_path / "run" / "model.safetensors")
    parts = load_file(tmp_path / "part" / "model.safetensors")
    assert all(torch.equal(whole[name], parts[name]) for name in whole)


def test_a_transcript_its_clip_cannot_hold_is_refused_before_step_0(
    strings: Path, cli: Cli, tmp_path: Path
) -> None:
    frame = pd.read_csv(strings)
    frame.loc[3, "text"] = " ".join(["seven"] * 60)  # 60 words in a clip of a few
    frame.to_csv(strings.parent / "long.csv", index=False)
    config = _config(strings.parent / "long.csv", tmp_path)
    result = cli("train", config, "--output-dir", tmp_path / "run")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "long.csv (train split): column 'text', row 4: the transcript needs" in result.stderr
    assert "duration" in result.stderr and not (tmp_path / "run").exists()
