"""`serve` (backend auto) of a speech run that holds RUN/bundle: the bundle has the encoder and
CTC head only, so a hybrid decoding with its attention decoder, or a run fusing a GPT
(`model.lm`), is served with PyTorch (found when `serve` of a hybrid run answered the bundle's
CTC transcripts, not the joint beam search the docs promise)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from megalith.serving.backend import decodes_in_torch

BASE = {
    "data": {"source": "strings.csv", "split": {"column": "split"}},
    "inputs": [{"name": "audio", "type": "audio", "sample_rate": 8000, "duration": 2.0}],
    "outputs": [{"name": "text", "type": "text", "tokenizer": "char"}],
}


def _run(tmp_path: Path, model: dict) -> Path:
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({**BASE, "model": model}))
    return tmp_path


@pytest.mark.parametrize(
    ("model", "needs"),
    [
        ({"arch": "asr", "ctc_weight": 0.3, "decoder_layers": 1}, "joint CTC/attention"),
        ({"arch": "asr", "beam_size": 4, "lm": "runs/lm"}, "the language model runs/lm"),
        ({"arch": "asr", "ctc_weight": 0.3, "decoder_layers": 1, "decode_ctc_weight": 1}, ""),
        ({"arch": "asr"}, ""),
        ({"arch": "asr", "beam_size": 4}, ""),
    ],
)
def test_what_a_speech_runs_decoding_needs_beyond_its_bundle(
    tmp_path: Path, model: dict, needs: str
) -> None:
    found = decodes_in_torch(_run(tmp_path, model))
    assert found.startswith(needs) if needs else found == ""


def test_an_unreadable_config_is_left_to_run_load(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("model: [")
    assert decodes_in_torch(tmp_path) == ""
    assert decodes_in_torch(tmp_path / "nowhere") == ""


def test_export_of_a_hybrid_says_its_bundle_decodes_with_ctc_alone(tmp_path: Path) -> None:
    from megalith.cli_stages import bundle_decoding_note

    hybrid = _run(tmp_path, {"arch": "asr", "ctc_weight": 0.3, "decoder_layers": 1})
    note = bundle_decoding_note(hybrid)
    assert note is not None and "the bundle decodes with the CTC head alone" in note
    assert "joint CTC/attention" in note
    assert bundle_decoding_note(_run(tmp_path, {"arch": "asr"})) is None
