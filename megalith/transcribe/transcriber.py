"""`Run.transcribe`: sound files of any length -> text, with a trained `model.arch: asr` run.

Each recording is read at the model's sample rate, cut into windows of the model's clip length
that overlap (a quarter of the window by default), the windows go through the model together,
their CTC frame logits are stitched and decoded: greedy, or prefix beam search with the run's
(or the call's) beam_size and optional GPT language model (megalith.transcribe.decode).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from megalith.errors import ConfigError, RunError
from megalith.models.ctc_decoding import CTCDecoding, decoding_settings, joint_ctc_weight
from megalith.runtime.ctc import LanguageModel
from megalith.runtime.transcription import (
    Recording,
    read_recordings,
    transcribe_waves,
    valid_text,
)
from megalith.transcribe.decode import CTCDecoder, speech_windows

LoadRun = Callable[[str], Any]
"""Loads a run directory (megalith.load): how a language model named by `lm` is read."""


class SpeechRun(Protocol):
    """What transcription reads of a loaded run (megalith.run.Run)."""

    path: Path
    config: Any
    preprocessor: Any
    model: nn.Module


def language_model_for(
    settings: CTCDecoding, tokenizer: Any, load: LoadRun | None
) -> LanguageModel | None:
    """The GPT run settings.lm names, over the recognizer's labels; None without one.

    Raises:
        ConfigError: the run cannot be loaded, is no GPT, or spells text differently.
    """
    if settings.lm is None:
        return None
    if load is None:
        raise ConfigError("model.lm: a language model needs a way to load runs (megalith.load)")
    from megalith.transcribe.shallow_fusion import load_language_model

    return load_language_model(settings.lm, tokenizer, load)


def _recognizer_tokenizer(run: SpeechRun) -> Any:
    from megalith.models.asr import ASR

    if not isinstance(run.model, ASR):
        raise RunError(
            f"{run.path} is not a speech recognizer (model.arch {run.config.model.arch}); "
            "transcribe takes runs trained with model.arch asr"
        )
    tokenizer = getattr(run.preprocessor.outputs[0], "tokenizer", None)
    assert tokenizer is not None, "a fitted asr run has a tokenizer"
    return tokenizer


class Transcriber:
    """A speech recognizer run and how it decodes; `transcribe` writes text."""

    def __init__(
        self,
        run: SpeechRun,
        *,
        overlap: float | None = None,
        load: LoadRun | None = None,
        **decoding: Any,
    ) -> None:
        """
        Args:
            run: a loaded `model.arch: asr` run.
            overlap: seconds shared by neighbouring windows of a long recording (default: a
                quarter of the model's clip length).
            load: loads the language model run a `lm` setting names (megalith.load).
            decoding: beam_size, beam_top_k, lm, lm_weight, token_bonus, decode_ctc_weight
                (None or absent: the run's own `model.*` settings).
        Raises:
            RunError: the run is not a speech recognizer.
            ConfigError: a decoding setting is out of range or its LM does not fit.
        """
        self.tokenizer = _recognizer_tokenizer(run)
        self.run, self.model = run, run.model
        self.windows = speech_windows(run.preprocessor, overlap)
        self.settings = decoding_settings(run.config.model, **decoding)
        lm = language_model_for(self.settings, self.tokenizer, load)
        self.joint = joint_decoder(self.model, self.settings)
        ctc = CTCDecoder(self.settings, self.tokenizer, lm)
        self.ctc = ctc
        self.decoder: Any = ctc
        if self.joint is not None:
            self.decoder = self.joint_decoding(None)

    def joint_decoding(self, stop: threading.Event | None) -> Callable[[np.ndarray], list[int]]:
        """Stitched frames (T, V + D) -> ids by the joint search, which `stop` ends before its
        next step (a long recording's search can outlast a server's time limit by minutes)."""
        joint: Any = self.joint
        model: Any = self.model
        reach, vocab = int(model.max_tokens), int(model.padding_logits.shape[0])
        ctc = self.ctc

        def decode(frames: np.ndarray) -> list[int]:
            return joint_or_ctc(lambda f: joint.from_frames(f, stop), ctc, reach, vocab, frames)

        return decode

    @torch.inference_mode()
    def forward(self, windows: np.ndarray) -> np.ndarray:
        """float32 waveforms (N, window) -> CTC logits (N, T', V), on the CPU; for joint
        decoding the encoder output follows on the last axis (N, T', V + D), so a long
        recording's windows stitch both alike."""
        from megalith.models.asr import MEMORY

        model: Any = self.model
        outputs = model({model.audio_name: torch.from_numpy(windows)})
        logits = outputs[model.name].float()
        if self.joint is not None:
            logits = torch.cat([logits, outputs[model.name + MEMORY].float()], dim=-1)
        return logits.numpy()

    def transcribe(
        self,
        recordings: Sequence[Recording],
        *,
        names: Sequence[str] | None = None,
        stop: threading.Event | None = None,
    ) -> list[str]:
        """One transcript per recording (see `Recording`), any length; setting `stop` (from
        another thread) ends it before its next window.

        Raises:
            DataError: a recording is missing, unreadable or empty (naming it).
            TranscriptionStopped: `stop` was set.
        """
        waves = read_recordings(recordings, self.windows.sample_rate, names)
        batch_size = self.run.config.train.eval_batch_size
        decoder = self.decoder if self.joint is None else self.joint_decoding(stop)
        ids = transcribe_waves(waves, self.forward, self.windows, decoder, batch_size, stop)
        return [valid_text(self.tokenizer.decode(row)) for row in ids]


def joint_or_ctc(
    joint: Callable[[np.ndarray], list[int]],
    ctc: Callable[[np.ndarray], list[int]],
    reach: int,
    vocab: int,
    frames: np.ndarray,
) -> list[int]:
    """One long recording's stitched frames (T, V + D) decoded jointly, unless the transcript
    reached the end of the decoder's positions (`reach` tokens, model.max_tokens) while CTC
    allowed more: the joint search was cut there, so the recording is decoded with the CTC
    head alone (`ctc`, on its first `vocab` columns), and a warning says so."""
    ids = joint(frames)
    if len(ids) < reach or len(frames) <= reach:
        return ids
    import warnings

    warnings.warn(
        f"a recording's transcript reached the {reach} tokens a hybrid's attention decoder "
        "covers (the transcripts of 8 clips); decoded it with the CTC head alone instead "
        "(ctc_weight 1) rather than cut it",
        stacklevel=2,
    )
    return ctc(np.asarray(frames)[:, :vocab])


def logits_decoder(run: SpeechRun, load: LoadRun) -> Callable[[torch.Tensor], torch.Tensor] | Any:
    """How `predict` and `evaluate` turn a recognizer's CTC logits (B, T', V) into ids (B, L):
    greedy at the run's beam_size 1, else its beam search (and language model); a hybrid
    model's joint CTC/attention search (a JointDecoder) at decode_ctc_weight below 1."""
    from megalith.models.asr import greedy_ctc
    from megalith.runtime.speech import padded_ids

    settings = decoding_settings(run.config.model)
    joint = joint_decoder(run.model, settings)
    if joint is not None:
        return joint
    if settings.beam_size == 1:
        return greedy_ctc
    tokenizer = _recognizer_tokenizer(run)
    decoder = CTCDecoder(settings, tokenizer, language_model_for(settings, tokenizer, load))

    def decode(logits: torch.Tensor) -> torch.Tensor:
        rows = decoder.batch(logits.float().cpu().numpy())
        return torch.from_numpy(padded_ids(rows))

    return decode


def joint_decoder(model: Any, settings: CTCDecoding) -> Any:
    """A hybrid model's JointDecoder when the settings ask for attention decoding, else None."""
    weight = joint_ctc_weight(settings, getattr(model, "ctc_weight", 1.0))
    if weight >= 1 or not getattr(model, "hybrid", False):
        return None
    from megalith.models.joint_decoding import JointDecoder

    return JointDecoder(model, settings.beam_size, weight)


def check_language_model(model_config: Any, preprocessor: Any, load: LoadRun) -> None:
    """Load the GPT run `model.lm` names and match it to the fitted tokenizer, so that training
    stops before step 0, not at its final evaluation, when it cannot be fused.

    Raises:
        ConfigError: naming model.lm: the run is missing, no GPT, or spells text differently.
    """
    settings = decoding_settings(model_config)
    tokenizer = getattr(preprocessor.outputs[0], "tokenizer", None)
    if settings.lm is not None and tokenizer is not None:
        language_model_for(settings, tokenizer, load)
