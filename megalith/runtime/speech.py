"""A speech recognizer's bundle: model.onnx maps waveforms (B, samples) float32 to CTC logits
(B, T', V) (log-mel front end, encoder and CTC head in one graph), and bundle.json's `ctc`
entry says how to read long recordings and decode:

    "task": "asr",
    "ctc": {"blank": 0, "sample_rate": 8000, "window": 24000, "frame": 320, "beam_size": 1}

`BundleRecognizer` transcribes sound files of any length with it (megalith.runtime.transcription),
greedy or with CTC prefix beam search (no language model: that needs PyTorch). Torch-free.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from megalith.data.tokenizers import PAD
from megalith.errors import RunError
from megalith.runtime.ctc import greedy_ctc, prefix_beam_search
from megalith.runtime.decoding import log_softmax
from megalith.runtime.transcription import (
    Recording,
    SpeechWindows,
    read_recordings,
    transcribe_waves,
    valid_text,
)

TASK = "asr"
CTC_KEYS = ("blank", "sample_rate", "window", "frame", "beam_size")


def ctc_description(
    *, blank: int, sample_rate: int, window: int, frame: int, beam_size: int
) -> dict[str, int]:
    """bundle.json's `ctc` entry (the exporter writes it)."""
    return {
        "blank": blank,
        "sample_rate": sample_rate,
        "window": window,
        "frame": frame,
        "beam_size": beam_size,
    }


def decode_logits(logits: np.ndarray, blank: int, beam_size: int) -> list[int]:
    """(T, V) CTC logits -> ids: greedy at beam_size 1, else CTC prefix beam search."""
    if beam_size == 1:
        return greedy_ctc(logits, blank)
    scores = log_softmax(np.asarray(logits, dtype=np.float32))
    return list(prefix_beam_search(scores, blank, beam_size)[0].labels)


def padded_ids(rows: Sequence[Sequence[int]]) -> np.ndarray:
    """int64 (N, L) ids, left-aligned and PAD-padded (L >= 1), as a text output decodes them."""
    width = max([len(row) for row in rows] + [1])
    out = np.full((len(rows), width), PAD, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


class BundleRecognizer:
    """Transcribes with an exported `model.arch: asr` bundle (a `Bundle` with task asr)."""

    def __init__(self, bundle: Any) -> None:
        entry = bundle.description.get("ctc")
        if bundle.description.get("task") != TASK or not isinstance(entry, dict):
            raise RunError(
                f"{bundle.path} does not hold a speech recognizer (bundle.json has no task "
                "asr and ctc entry); transcribe takes bundles exported from model.arch asr runs"
            )
        if any(not isinstance(entry.get(key), int) for key in CTC_KEYS):
            raise RunError(f"{bundle.files.description}: its ctc entry needs {list(CTC_KEYS)}")
        self.bundle, self.ctc = bundle, entry
        self.tokenizer = bundle.preprocessor.outputs[0].tokenizer

    def forward(self, windows: np.ndarray) -> np.ndarray:
        """float32 (N, window) -> CTC logits (N, T', V) from model.onnx."""
        outputs = self.bundle.run_graph([windows], len(windows))
        return outputs[self.bundle.output_names[0]]

    def transcribe(
        self,
        recordings: Sequence[Recording],
        *,
        names: Sequence[str] | None = None,
        beam_size: int | None = None,
        overlap: float | None = None,
        batch_size: int = 16,
        stop: threading.Event | None = None,
    ) -> list[str]:
        """One transcript per recording of any length (see megalith.runtime.transcription);
        setting `stop` (another thread) ends it before its next window.

        Raises:
            DataError: a recording is missing, unreadable or empty; a bad overlap.
            TranscriptionStopped: `stop` was set.
        """
        ctc = self.ctc
        windows = SpeechWindows.of(ctc["sample_rate"], ctc["window"], ctc["frame"], overlap)
        beams = beam_size or ctc["beam_size"]
        waves = read_recordings(recordings, ctc["sample_rate"], names)

        def decode(logits: np.ndarray) -> list[int]:
            return decode_logits(logits, ctc["blank"], beams)

        ids = transcribe_waves(waves, self.forward, windows, decode, batch_size, stop)
        return [valid_text(self.tokenizer.decode(row)) for row in ids]

    def ids(self, logits: np.ndarray) -> np.ndarray:
        """(N, T', V) logits of clips -> PAD-padded ids (N, L), as `Bundle.predict` writes."""
        beams, blank = self.ctc["beam_size"], self.ctc["blank"]
        return padded_ids([decode_logits(row, blank, beams) for row in logits])
