"""How a CTC model's frame scores become text: the `model.*` decoding keys of `model.arch: asr`.

Torch-free (the recognizer's config embeds it; the transcription code in megalith.transcribe and
the bundle runtime read it), so it holds settings only: the search is megalith.runtime.ctc.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError, model_validator

from megalith.configbase import ConfigModel
from megalith.errors import ConfigError


class CTCDecoding(ConfigModel):
    """Greedy CTC, or CTC prefix beam search with optional GPT shallow fusion."""

    beam_size: int = Field(1, ge=1)
    """Prefixes kept by CTC prefix beam search; 1 decodes greedily (best path), the fastest."""
    beam_top_k: int | None = Field(None, ge=1)
    """Extend beams only with each frame's k most likely tokens (faster; None tries them all)."""
    lm: str | None = None
    """A Megalith GPT run directory (a language model trained on text with a char tokenizer, or
    the recognizer's own tokenizer) fused into the beam search (shallow fusion); needs
    beam_size > 1."""
    lm_weight: float = Field(0.5, ge=0)
    """The language model's weight: score = log P_ctc + lm_weight * log P_lm + token_bonus * len."""
    token_bonus: float = 0.0
    """Added to a hypothesis' score per token, offsetting the language model's pull to short
    outputs (try 0.5-2 with an LM)."""
    decode_ctc_weight: float | None = Field(None, gt=0, le=1)
    """A hybrid CTC/attention model's decoding: below 1, attention beam search scored with
    this weight on the CTC prefix score (megalith.models.joint_decoding); 1, CTC alone (greedy
    or prefix beam search, as a CTC model). None: the model's ctc_weight."""

    @model_validator(mode="after")
    def _lm_needs_a_beam(self) -> CTCDecoding:
        if self.lm is not None and self.beam_size == 1:
            raise ValueError(
                "lm: shallow fusion happens inside beam search; set beam_size to 2 or more "
                "(8 is a good start) or drop lm"
            )
        if self.lm is not None and (self.decode_ctc_weight or 1.0) < 1:
            raise ValueError(
                "lm: shallow fusion happens inside the CTC prefix beam search; set "
                "decode_ctc_weight to 1 (CTC alone) to fuse a language model, or drop lm"
            )
        return self


OVERRIDABLE = ("beam_size", "beam_top_k", "lm", "lm_weight", "token_bonus", "decode_ctc_weight")
"""Decoding keys a command (transcribe, predict) may change for one call."""
LM_BEAM_SIZE = 8
"""The beam used when a language model is given to a run that decodes greedily."""


_GREEDY_LM_WEIGHT = (
    "beam_size 1 (--beam-size 1) decodes greedily, without the run's language model "
    "(model.lm), so lm_weight {weight:g} (--lm-weight) would weigh nothing; give --beam-size 2 "
    "or more to fuse the language model, or leave --lm-weight out"
)
_GREEDY_TOKEN_BONUS = (
    "token_bonus {bonus:g} (--token-bonus) is added to each hypothesis inside beam search, but "
    "beam_size 1 (the run's, or --beam-size 1) decodes greedily and would ignore it; give "
    "--beam-size 2 or more, or leave --token-bonus out"
)


def decoding_settings(model_config: Any, **overrides: Any) -> CTCDecoding:
    """The run's decoding keys (those its `model` config has) with `overrides` (None = keep).

    Raises:
        ConfigError: an override is out of range (e.g. an LM with beam_size 1), or asks for
            greedy decoding (beam_size 1) on a run with an LM while weighing it (lm_weight),
            or gives a token_bonus to a search that ignores it (greedy, attention).
    """
    keys = {key: getattr(model_config, key) for key in OVERRIDABLE if hasattr(model_config, key)}
    given = {key: value for key, value in overrides.items() if value is not None}
    keys.update(given)
    if keys.get("lm") is not None and keys.get("beam_size", 1) == 1 and "beam_size" not in given:
        keys["beam_size"] = LM_BEAM_SIZE  # an LM asked for on a greedy run: search with a beam
    if given.get("beam_size") == 1 and "lm" not in given:
        if keys.get("lm") is not None and "lm_weight" in given:
            raise ConfigError(_GREEDY_LM_WEIGHT.format(weight=given["lm_weight"]))
        keys["lm"] = None  # greedy asked for on a run with an LM: greedy decoding uses none
    trained = getattr(model_config, "ctc_weight", 1.0)
    if given.get("token_bonus"):
        _check_token_bonus_is_used(keys, trained, given["token_bonus"])
    if (keys.get("decode_ctc_weight") or 1.0) < 1 and trained == 1:
        raise ConfigError(
            "model.decode_ctc_weight: attention decoding needs a hybrid model (trained with "
            "model.ctc_weight below 1); this one has only its CTC head, so use 1 or leave it out"
        )
    try:
        return CTCDecoding(**keys)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "decoding"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"model.{where}: {message}") from None


def _check_token_bonus_is_used(keys: dict[str, Any], trained: float, bonus: float) -> None:
    """Only CTC prefix beam search adds token_bonus: greedy and attention decoding ignore it."""
    if keys.get("beam_size", 1) == 1:
        raise ConfigError(_GREEDY_TOKEN_BONUS.format(bonus=bonus))
    ctc_weight = keys.get("decode_ctc_weight") or (1.0 if keys.get("lm") else trained)
    if ctc_weight < 1:
        raise ConfigError(
            f"token_bonus {bonus:g} (--token-bonus) is added inside CTC prefix beam search; this "
            f"hybrid run decodes with attention (CTC weight {ctc_weight:g}), which ignores it: "
            "give --ctc-weight 1 to search with CTC alone, or leave --token-bonus out"
        )


def joint_ctc_weight(settings: CTCDecoding, trained: float) -> float:
    """The CTC weight λ decoding uses: decode_ctc_weight, else the model's trained ctc_weight;
    1 (CTC alone) with a language model, which fuses into the CTC beam search only."""
    if settings.decode_ctc_weight is not None:
        return settings.decode_ctc_weight
    return 1.0 if settings.lm is not None else trained
