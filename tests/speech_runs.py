"""A tiny trained speech recognizer (model.arch asr) on espeak-ng digit strings, for the
transcribe, serve and bundle tests.

One epoch on a dozen clips teaches a CTC model to write blanks only; the head's blank bias is then
lowered so that the run writes a token on most frames. Its transcripts are nonsense, but long and
varied: what these tests compare (PyTorch with ONNX Runtime, a clip with its window, the CLI with
the Python API) is then checked on many tokens, not on empty strings.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile
import torch
from safetensors.torch import load_file, save_file

import megalith as mg
from megalith.data.spoken_digit_strings import make_spoken_digit_strings

BLANK_BIAS_DROP = 6.0


def tiny_recognizer(tmp_path_factory: pytest.TempPathFactory) -> tuple[mg.Run, list[Path]]:
    """`train_tiny_recognizer` once per test process: the modules that use it share the run."""
    folder = tmp_path_factory.getbasetemp() / "tiny-recognizer"
    if not (folder / "run" / "eval.json").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        return train_tiny_recognizer(folder)
    return mg.load(folder / "run"), sorted((folder / "strings" / "test-clips").iterdir())


def train_tiny_recognizer(folder: Path) -> tuple[mg.Run, list[Path]]:
    """(the loaded run, its test clips' paths): 4 voices x 3 strings at 8 kHz, 1 epoch."""
    table = make_spoken_digit_strings(
        folder / "strings", speakers=4, strings=3, test_speakers=1, val_speakers=1
    )
    config = {
        "name": "tiny-asr",
        "data": {"source": str(table), "split": {"column": "split"}},
        "inputs": [{"name": "audio", "type": "audio", "sample_rate": 8000, "duration": 3.0}],
        "outputs": [{"name": "text", "type": "text", "tokenizer": "char"}],
        "model": {"arch": "asr", "dim": 32, "layers": 1, "heads": 2, "channels": 8},
        "train": {"epochs": 1, "batch_size": 4},
    }
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small steps: a second thread only adds synchronisation
    try:
        mg.train(config, output_dir=folder / "run")
    finally:
        torch.set_num_threads(threads)
    weights = folder / "run" / "model.safetensors"
    tensors = load_file(weights)
    tensors["head.bias"][0] -= BLANK_BIAS_DROP  # write tokens, not only blanks
    save_file(tensors, weights)
    frame = pd.read_csv(table)
    (folder / "strings" / "test-clips").mkdir()
    for file in frame.loc[frame["split"] == "test", "audio"]:
        shutil.copy(table.parent / file, folder / "strings" / "test-clips")
    return mg.load(folder / "run"), sorted((folder / "strings" / "test-clips").iterdir())


def long_recording(clips: list[Path], path: Path) -> Path:
    """The clips one after another with half a second of silence between, as one WAV."""
    pieces = []
    for clip in clips:
        wave, rate = soundfile.read(str(clip), dtype="float32")
        pieces += [wave, np.zeros(rate // 2, dtype=np.float32)]
    soundfile.write(path, np.concatenate(pieces), rate)
    return path
