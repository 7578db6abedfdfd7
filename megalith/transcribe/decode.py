"""Frame scores -> token ids with the run's CTC decoding settings (megalith.models.ctc_decoding).

`CTCDecoder` picks greedy decoding (beam_size 1) or CTC prefix beam search (megalith.runtime.ctc),
loading the GPT run named by `lm` for shallow fusion once, when the decoder is made.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from megalith.data.tokenizers import PAD, Tokenizer
from megalith.models.ctc_decoding import CTCDecoding
from megalith.runtime.ctc import LanguageModel, greedy_ctc, prefix_beam_search
from megalith.runtime.decoding import log_softmax

BLANK = PAD
"""The CTC blank of `model.arch: asr` (megalith.models.asr): the tokenizer's padding id."""

OVERRIDABLE = ("beam_size", "beam_top_k", "lm", "lm_weight", "token_bonus")
"""Decoding keys a command (transcribe, predict) may change for one call."""
LM_BEAM_SIZE = 8
"""The beam used when a language model is given to a run that decodes greedily."""


def decoding_settings(model_config: Any, **overrides: Any) -> CTCDecoding:
    """The run's decoding keys (those its `model` config has) with `overrides` (None = keep).

    Raises:
        ConfigError: an override is out of range (e.g. an LM with beam_size 1).
    """
    from pydantic import ValidationError

    from megalith.errors import ConfigError

    keys = {key: getattr(model_config, key) for key in OVERRIDABLE if hasattr(model_config, key)}
    given = {key: value for key, value in overrides.items() if value is not None}
    keys.update(given)
    if keys.get("lm") is not None and keys.get("beam_size", 1) == 1 and "beam_size" not in given:
        keys["beam_size"] = LM_BEAM_SIZE  # an LM asked for on a greedy run: search with a beam
    try:
        return CTCDecoding(**keys)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "decoding"
        raise ConfigError(f"model.{where}: {first['msg']}") from None


class CTCDecoder:
    """Token ids of one utterance from its frame logits (T, V), by the given settings."""

    def __init__(
        self,
        settings: CTCDecoding,
        tokenizer: Tokenizer,
        language_model: LanguageModel | None = None,
    ) -> None:
        """
        Args:
            settings: greedy or beam, and the LM run to fuse (loaded here unless
                `language_model` is given).
            tokenizer: the recognizer's fitted text tokenizer (its ids are the CTC labels).
            language_model: a ready language model, instead of loading `settings.lm`.
        Raises:
            ConfigError: settings.lm cannot be loaded or does not fit the tokenizer.
        """
        self.settings = settings
        if language_model is None and settings.lm is not None:
            from megalith.transcribe.shallow_fusion import load_language_model

            language_model = load_language_model(settings.lm, tokenizer, "model.lm")
        self.language_model = language_model

    def __call__(self, logits: np.ndarray) -> list[int]:
        """(T, V) frame logits or log-probabilities -> token ids, blanks and repeats gone."""
        settings = self.settings
        if settings.beam_size == 1:
            return greedy_ctc(logits, BLANK)
        searching = getattr(self.language_model, "searching", contextlib.nullcontext)
        with searching():
            best = prefix_beam_search(
                log_softmax(np.asarray(logits, dtype=np.float32)),
                BLANK,
                settings.beam_size,
                top_k=settings.beam_top_k,
                language_model=self.language_model,
                lm_weight=settings.lm_weight if self.language_model is not None else 0.0,
                token_bonus=settings.token_bonus,
            )[0]
        return list(best.labels)

    def batch(self, logits: np.ndarray) -> list[list[int]]:
        """(B, T, V) -> one id list per row."""
        return [self(row) for row in logits]
