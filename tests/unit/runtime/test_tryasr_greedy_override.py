"""`megalith transcribe RUN --beam-size 1` (and `run.transcribe(beam_size=1)`) on a run trained
with `model.lm` decodes greedily: it was refused ("model.decoding: Value error, lm: shallow
fusion happens inside beam search"), and no option could drop the run's LM."""

from __future__ import annotations

import pytest

from megalith.errors import ConfigError
from megalith.models.ctc_decoding import CTCDecoding, decoding_settings

FUSED = CTCDecoding(beam_size=4, lm="/runs/lm", lm_weight=0.3)


def test_greedy_on_a_fused_run_drops_its_language_model() -> None:
    settings = decoding_settings(FUSED, beam_size=1)
    assert settings.beam_size == 1 and settings.lm is None


def test_the_runs_decoding_is_kept_without_overrides() -> None:
    assert decoding_settings(FUSED) == FUSED  # decode_ctc_weight left as configured
    assert decoding_settings(FUSED, beam_size=8).lm == "/runs/lm"


def test_asking_for_an_lm_and_greedy_together_is_refused_in_plain_words() -> None:
    with pytest.raises(ConfigError) as caught:
        decoding_settings(FUSED, beam_size=1, lm="/runs/other")
    message = str(caught.value)
    assert "shallow fusion happens inside beam search" in message
    assert "Value error" not in message


def test_greedy_with_a_weight_for_the_dropped_language_model_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"--beam-size 1\) decodes greedily.*lm_weight 0\.7"):
        decoding_settings(FUSED, beam_size=1, lm_weight=0.7)
    assert decoding_settings(FUSED, beam_size=8, lm_weight=0.7).lm_weight == 0.7


def test_a_token_bonus_for_greedy_decoding_is_refused() -> None:
    greedy = CTCDecoding()
    with pytest.raises(ConfigError, match=r"token_bonus 1\.5 .*decodes greedily"):
        decoding_settings(greedy, token_bonus=1.5)
    with pytest.raises(ConfigError, match="token_bonus 2 "):
        decoding_settings(FUSED, beam_size=1, token_bonus=2.0)
    assert decoding_settings(greedy, beam_size=4, token_bonus=1.5).token_bonus == 1.5
    assert decoding_settings(FUSED, token_bonus=1.0).beam_size == 4
    assert decoding_settings(greedy, token_bonus=0.0).beam_size == 1  # 0 is the default: no-op


def test_a_token_bonus_for_attention_decoding_is_refused() -> None:
    class Hybrid:  # a hybrid CTC/attention model's config: it decodes with attention
        beam_size, ctc_weight, decode_ctc_weight = 4, 0.3, None

    with pytest.raises(ConfigError, match=r"decodes with attention \(CTC weight 0\.3\)"):
        decoding_settings(Hybrid(), token_bonus=1.0)
    ctc_alone = decoding_settings(Hybrid(), token_bonus=1.0, decode_ctc_weight=1.0)
    assert ctc_alone.token_bonus == 1.0
