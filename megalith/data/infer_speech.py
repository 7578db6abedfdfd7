"""What `megalith init` writes for a table of recordings and their transcripts: a speech recognizer.

A table is taken for speech when its target column holds transcripts — text of two or more words
on average, mostly different from row to row (a few repeated phrases are commands: a category) —
and one of its other columns holds sound files. The config is `model.arch: asr` (megalith.models
.asr) reading that one audio column:

- the clip length (`duration`) is the longest clip's, never cut: a cut clip would lose words its
  transcript still has;
- the tokenizer is `char`: CTC spells the transcript letter by letter, so any word can be written
  (a `word` tokenizer over the ten digit words stayed at 100% validation WER for 5 epochs where
  `char` was at 58% after 7, same data, model and optimizer: one spike per word amid long runs of
  blanks is harder for CTC to start learning);
- the encoder's size and the epochs follow the hours of speech (see `_model_for`), with SpecAugment
  and random gain as augmentation, AdamW with a warm-up and cosine decay, and early stopping on
  the validation CER;
- below an hour of speech it trains on one CPU thread (`train.threads: 1`): on a shared 2-core
  machine 3 epochs took 25 CPU seconds on one thread and 126 on two (docs/speech.md).

On synthetic digit strings by 4 held-out voices (benchmarks/asr_digits.py) this config reached
9.3% test WER in 40 epochs; its training took 599 s of wall time and 165 CPU seconds on 2 cores
shared with other jobs (load average 9-11; see docs/speech.md).

It is a CTC model alone, not the hybrid CTC/attention one (`model.ctc_weight` below 1): on a
small digit set (180 train clips, 4 unheard test voices, 15 epochs each) the CTC model reached
test WER 0.887 / CER 0.402 and the hybrid (ctc_weight 0.3, joint beam 4) 0.917 / 0.619 with 1.2x
the training CPU time, and its joint decoding took 95 ms a clip against 0.05 for greedy CTC
(docs/speech.md, "Does it help here?").
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from megalith.data.infer_audio import sampled_sound_headers

_MIN_MEAN_WORDS = 2.0
"""Transcripts average at least this many words (single words are labels: a category)."""
_MIN_DISTINCT_SHARE = 0.5
"""...and at least this share of the rows differ from each other."""
_HEADERS_READ = 2000
"""Files whose headers are read for the longest clip and the hours (evenly spaced)."""


def looks_like_transcripts(values: pd.Series) -> bool:
    """Text of >= 2 words per row on average, mostly distinct: what a recognizer writes."""
    present = values.dropna()
    if len(present) < 2 or not all(isinstance(v, str) for v in present):
        return False
    words = present.map(lambda text: len(text.split()))
    return bool(
        words.mean() >= _MIN_MEAN_WORDS and present.nunique() >= _MIN_DISTINCT_SHARE * len(present)
    )


def speech_config(
    config: dict[str, Any],
    frame: pd.DataFrame,
    audio: dict[str, Any],
    target: str,
    base_dir: Path | None,
    notices: list[str],
) -> dict[str, Any]:
    """`config` (as init inferred it) turned into a speech recognizer's: `audio` the one input
    (its feature config), `target` the transcript, written by model.arch asr."""
    name = audio["name"]
    # the notes init wrote for a classifier's target and a classifier's cut clips do not hold
    stale = (
        f"target '{target}' has ",
        f"column '{name}' holds sound files",
        f"column '{name}': a CRNN",  # the classifier's model, not the recognizer's
    )
    notices[:] = [notice for notice in notices if not notice.startswith(stale)]
    dropped = [f["name"] for f in config["inputs"] if f["name"] != name]
    longest, hours = _clip_lengths(frame[name], base_dir)
    # the recognizer finds each clip's end itself: variable_length is a classifier's setting
    feature = {k: v for k, v in audio.items() if k not in ("duration", "variable_length")}
    if longest:
        feature["duration"] = math.ceil(longest * 10) / 10
    feature["augment"] = {"gain_db": 6.0, "time_masks": 2, "time_mask_width": 10}
    model, epochs, batch_size = _model_for(hours, len(frame))
    notices.append(
        f"column '{target}' holds transcripts and column '{name}' sound files: a speech "
        f"recognizer (model.arch asr: log-mel -> x4 conv subsampling -> {model['layers']} "
        f"Transformer blocks of width {model['dim']} -> CTC), sized for {hours:.2f} hours of "
        f"speech; clips padded to the longest ({feature.get('duration')} s), never cut"
        + "; tokenizer char (spells any word); CTC alone: in the same epochs it beat the "
        + "hybrid CTC/attention model (model.ctc_weight) on unheard voices"
        + (f"; not inputs of a recognizer: {', '.join(dropped)}" if dropped else "")
    )
    steps = epochs * math.ceil(0.8 * len(frame) / batch_size)
    train = {
        **config["train"],
        "epochs": epochs,
        "batch_size": batch_size,
        "optimizer": {"name": "adamw", "lr": 0.002, "weight_decay": 0.01},
        "schedule": {"name": "cosine", "warmup_steps": max(1, min(200, steps // 10))},
        "clip_grad_norm": 5.0,
        # CER, not WER: until it spells whole words right a recognizer's WER stays at 1.0 while
        # its CER falls, and a WER watch would stop there and keep the first epoch's weights
        "early_stop": {"metric": "val/cer", "patience": max(5, epochs // 4)},
    }
    if hours < 1.0:  # its operators are too small to share: a second thread only waits
        train["threads"] = 1
    output = {"name": target, "type": "text", "tokenizer": "char"}
    return {**config, "inputs": [feature], "outputs": [output], "model": model, "train": train}


def _model_for(hours: float, rows: int) -> tuple[dict[str, Any], int, int]:
    """(model, epochs, batch size) for this much speech: a small encoder that trains on a CPU in
    minutes below an hour of audio, wider and deeper above."""
    if hours < 1.0:
        model: dict[str, Any] = {"arch": "asr", "dim": 96, "layers": 3, "heads": 4, "channels": 32}
        epochs = 40
    elif hours < 20.0:
        model = {"arch": "asr", "dim": 144, "layers": 6, "heads": 4, "channels": 64}
        epochs = 30
    else:
        model = {"arch": "asr", "dim": 256, "layers": 12, "heads": 4, "channels": 128}
        epochs = 20
    return model, epochs, 16 if rows < 2000 else 32


def _clip_lengths(values: pd.Series, base_dir: Path | None) -> tuple[float, float]:
    """(seconds of the longest clip read, hours of all clips estimated from those read)."""
    headers = sampled_sound_headers(values, base_dir, _HEADERS_READ)
    seconds = [frames / rate for rate, frames in headers]
    if not seconds:
        return 0.0, 0.0
    return max(seconds), float(np.mean(seconds)) * values.count() / 3600
