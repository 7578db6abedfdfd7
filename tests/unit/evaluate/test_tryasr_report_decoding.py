"""The report's transcripts section names the decoding its hypotheses came from: they are the
run's predictions, decoded with its model.beam_size and model.lm, yet the heading said
"greedy CTC" for every run."""

from __future__ import annotations

from megalith.config import load_config
from megalith.evaluate.speech_report import decoding_words


def model(**keys: object) -> object:
    config, _ = load_config(
        {
            "data": {"source": "clips.csv"},
            "inputs": [{"name": "audio", "type": "audio", "sample_rate": 8000, "duration": 1.0}],
            "outputs": [{"name": "text", "type": "text", "tokenizer": "char"}],
            "model": {"arch": "asr", **keys},
        }
    )
    return config.model


def test_a_greedy_run_says_greedy() -> None:
    assert decoding_words(model()) == "greedy CTC"


def test_a_beam_and_its_language_model_are_named() -> None:
    assert decoding_words(model(beam_size=8)) == "CTC prefix beam search of 8"
    fused = decoding_words(model(beam_size=4, lm="/runs/digit-lm", lm_weight=0.4))
    assert fused == "CTC prefix beam search of 4 + GPT shallow fusion (digit-lm, lm_weight 0.4)"
