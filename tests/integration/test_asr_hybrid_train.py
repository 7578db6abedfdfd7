"""The hybrid CTC/attention recognizer on digit strings synthesised by espeak-ng: it overfits a
handful of utterances to CER 0, its joint decoding is never worse than CTC alone there, and a
training run through the pipeline scores, predicts, transcribes and resumes exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file

import megalith as mg
from megalith.data.features.audio import AudioInput
from megalith.data.features.text import TextOutput
from megalith.data.preprocess import Preprocessor
from megalith.data.spoken_digit_strings import make_spoken_digit_strings
from megalith.evaluate.speech import error_rates
from megalith.models import ASRConfig, build_model
from megalith.models.asr import greedy_ctc
from megalith.models.hybrid_asr import attention_inputs, hybrid_loss
from megalith.models.joint_decoding import JointDecoder


@pytest.fixture(scope="module")
def strings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 clips: 5 voices x 6 strings of 3-7 digits at 8 kHz (a few seconds to make)."""
    folder = tmp_path_factory.mktemp("hybrid-strings")
    return make_spoken_digit_strings(folder, speakers=5, strings=6, test_speakers=1, val_speakers=1)


@pytest.mark.slow  # some 100 steps of a small encoder-decoder on four clips
def test_a_hybrid_overfits_and_its_joint_decoding_is_never_worse_than_ctc(strings: Path) -> None:
    torch.manual_seed(0)
    rows = pd.read_csv(strings)
    frame = rows.loc[rows["text"].str.len().sort_values(kind="stable").index[:4]]
    inputs, outputs = [AudioInput(name="audio")], [TextOutput(name="text", tokenizer="char")]
    pre = Preprocessor.fit(inputs, outputs, frame, base_dir=strings.parent, origin="strings")
    table = attention_inputs(pre.transform(frame, base_dir=strings.parent, origin="s"), "text")
    config = ASRConfig(
        dim=64, layers=1, heads=4, channels=32, dropout=0.0, ctc_weight=0.3, decoder_layers=1
    )
    model = build_model(config, pre.input_specs, pre.output_specs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    references = list(frame["text"])
    audio = {"audio": table.inputs["audio"]}
    joint: list[str] = []

    def written(ids: torch.Tensor) -> list[str]:
        return list(pre.decode({"text": ids})["text"])

    for step in range(400):
        model.train()
        loss = hybrid_loss(model(table.inputs), table.targets["text"], "text", 0.3)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 10 == 9:
            model.eval()
            with torch.no_grad():
                outputs = model(audio)
            ctc = written(greedy_ctc(outputs["text"]))
            if error_rates(ctc, references)["cer"] > 0.2:
                continue  # the joint search is slow on a model that still babbles
            joint = written(JointDecoder(model, 4, 0.3).from_outputs(outputs))
            if joint == references:
                break
    assert joint == references, f"after {step + 1} steps: {joint} vs {references}"
    hybrid_scores, ctc_scores = error_rates(joint, references), error_rates(ctc, references)
    assert hybrid_scores == {"wer": 0.0, "cer": 0.0}
    assert hybrid_scores["cer"] <= ctc_scores["cer"] and hybrid_scores["wer"] <= ctc_scores["wer"]


def _config(strings: Path, folder: Path, **train: object) -> Path:
    config = {
        "name": "hybrid",
        "data": {"source": str(strings), "split": {"column": "split"}},
        "inputs": [{"name": "audio", "type": "audio", "augment": {}}],
        "outputs": [{"name": "text", "type": "text", "tokenizer": "char"}],
        "model": {
            "arch": "asr",
            **{"dim": 32, "layers": 1, "heads": 4, "channels": 8},
            **{"ctc_weight": 0.3, "decoder_layers": 1, "beam_size": 2},
        },
        "train": {"epochs": 1, "batch_size": 8, **train},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow  # two short training runs and a resumed one
def test_a_hybrid_run_scores_predicts_transcribes_and_resumes_exactly(
    strings: Path, tmp_path: Path
) -> None:
    config = _config(strings, tmp_path, epochs=2)
    run = mg.train(config, output_dir=tmp_path / "run")
    assert any(
        name.startswith("decoder.") for name in load_file(tmp_path / "run" / "model.safetensors")
    )
    scores = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert set(scores["test"]) == {"loss", "wer", "cer"} and scores["test"]["loss"] > 0
    report = (tmp_path / "run" / "report.html").read_text()
    assert "joint CTC/attention beam search of 2 (CTC weight 0.3)" in report
    clips = [strings.parent / p for p in pd.read_csv(strings)["audio"][:2]]
    predicted = run.predict(pd.DataFrame({"audio": [str(c) for c in clips]}))
    joint = run.transcribe(clips)
    assert predicted["text"].tolist() == joint  # the same joint decoding both ways
    assert all(isinstance(text, str) for text in run.transcribe(clips, ctc_weight=1.0))
    # one epoch, then resumed for the second: the same weights as two epochs straight
    mg.train(config, output_dir=tmp_path / "part", overrides=["train.epochs=1"])
    mg.train(resume=tmp_path / "part", overrides=["train.epochs=2"])
    whole = load_file(tmp_path / "run" / "model.safetensors")
    parts = load_file(tmp_path / "part" / "model.safetensors")
    assert all(torch.equal(whole[name], parts[name]) for name in whole)
