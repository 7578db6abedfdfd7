"""Frame scores -> token ids with the run's CTC decoding settings (megalith.models.ctc_decoding).

`CTCDecoder` picks greedy decoding (beam_size 1) or CTC prefix beam search (megalith.runtime.ctc),
with the language model it is given (megalith.transcribe.shallow_fusion loads one).
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from megalith.data.tokenizers import PAD, Tokenizer
from megalith.models.ctc_decoding import CTCDecoding
from megalith.runtime.ctc import LanguageModel, greedy_ctc, prefix_beam_search
from megalith.runtime.decoding import log_softmax
from megalith.runtime.transcription import SpeechWindows

BLANK = PAD
"""The CTC blank of `model.arch: asr` (megalith.models.asr): the tokenizer's padding id."""


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
            settings: greedy or beam search, and its weights.
            tokenizer: the recognizer's fitted text tokenizer (its ids are the CTC labels).
            language_model: fused into the beam search when given (settings.lm loaded).
        """
        self.settings, self.tokenizer = settings, tokenizer
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


def speech_windows(preprocessor: Any, overlap: float | None = None) -> SpeechWindows:
    """The windows a recognizer with this fitted preprocessor reads (megalith.models.asr):
    its clip length, and one frame per hop_length x 4 samples."""
    from megalith.models.asr import SUBSAMPLING

    spec = preprocessor.input_specs[0]
    settings = spec.log_mel
    frame = settings.hop_length * SUBSAMPLING
    return SpeechWindows.of(settings.sample_rate, int(spec.shape[0]), frame, overlap)
