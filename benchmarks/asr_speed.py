"""Speech recognition speed: the real-time factor of greedy CTC transcription on one CPU core,
PyTorch against ONNX Runtime, for the example model (examples/spoken_digit_strings.yaml).

Makes spoken digit strings with espeak-ng (megalith.data.spoken_digit_strings, 8 kHz), trains the
example's model and input settings for `--epochs` (greedy speed does not depend on how well it
was trained; `--run RUN` measures a trained run instead), exports it, and transcribes the test clips
two ways: as they are (one file per utterance) and joined into recordings of `--long-seconds`,
which are cut into overlapping windows and stitched. Every path reads the files, resamples,
computes the log-mel front end, the encoder and the CTC head, and decodes, all on one thread
(torch.set_num_threads(1); ONNX Runtime with one intra-op thread).

The real-time factor (RTF) is compute seconds per second of audio; x_real_time = 1 / RTF. The
issue's goal: greedy transcription >= 50x faster than real time on one core. Prints one JSON
object per workload and backend, then the ratios of the same run.

    python benchmarks/asr_speed.py [--run RUN] [--epochs 1] [--repeats 3] [--tiny]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch
import yaml

import megalith as mg
from megalith.data.spoken_digit_strings import make_spoken_digit_strings
from megalith.runtime import load_bundle

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "spoken_digit_strings.yaml"


def train_example_recognizer(work: Path, epochs: int, tiny: bool) -> mg.Run:
    """The example's model (or a tiny one with --tiny) on a few espeak-ng digit strings."""
    speakers, strings = (4, 3) if tiny else (8, 10)
    table = make_spoken_digit_strings(
        work / "strings", speakers=speakers, strings=strings, test_speakers=2, val_speakers=1
    )
    example = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    model: dict[str, Any] = example["model"]
    if tiny:
        model.update(dim=32, layers=1, heads=2, channels=8)
    config = {
        "name": "asr-speed",
        "data": {"source": str(table), "split": {"column": "split"}},
        "inputs": example["inputs"],
        "outputs": example["outputs"],
        "model": model,
        "train": {"epochs": epochs, "batch_size": 8},
    }
    mg.train(config, output_dir=work / "run")
    return mg.load(work / "run")


def test_clips(run: mg.Run) -> list[Path]:
    """The run's test split's sound files."""
    table, splits = run.data_splits()
    return [Path(table.base_dir or ".") / file for file in splits["test"]["audio"]]


def long_recordings(clips: Sequence[Path], seconds: float, folder: Path) -> list[Path]:
    """The clips joined (with 0.3 s of silence between) into recordings of about `seconds`."""
    recordings, pieces, length, rate = [], [], 0, 8000
    for clip in clips:
        wave, rate = soundfile.read(str(clip), dtype="float32")
        pieces += [wave, np.zeros(int(0.3 * rate), np.float32)]
        length += len(wave) + int(0.3 * rate)
        if length >= seconds * rate:
            recordings.append(_write(pieces, rate, folder / f"long{len(recordings)}.wav"))
            pieces, length = [], 0
    if pieces:
        recordings.append(_write(pieces, rate, folder / f"long{len(recordings)}.wav"))
    return recordings


def _write(pieces: list[np.ndarray], rate: int, path: Path) -> Path:
    soundfile.write(path, np.concatenate(pieces), rate)
    return path


def audio_seconds(files: Sequence[Path]) -> float:
    return float(sum(soundfile.info(str(f)).duration for f in files))


def best_seconds(transcribe: Callable[[list[Path]], list[str]], files: list[Path], repeats: int):
    """The fastest of `repeats` timed calls, after one warm-up call; and the transcripts."""
    texts = transcribe(files)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        transcribe(files)
        times.append(time.perf_counter() - start)
    return min(times), texts


def measure(run: mg.Run, bundle_path: Path, files: list[Path], repeats: int) -> dict[str, Any]:
    audio = audio_seconds(files)
    bundle = load_bundle(bundle_path, threads=1)
    backends: dict[str, Callable[[list[Path]], list[str]]] = {
        "torch": lambda f: run.transcribe(f),
        "onnx": lambda f: bundle.transcribe(f),
        "torch_beam8": lambda f: run.transcribe(f, beam_size=8),
    }
    rows: dict[str, Any] = {}
    transcripts = {}
    for name, transcribe in backends.items():
        seconds, transcripts[name] = best_seconds(transcribe, files, repeats)
        rows[name] = {
            "seconds": round(seconds, 4),
            "rtf": round(seconds / audio, 5),
            "x_real_time": round(audio / seconds, 1),
        }
    rows["onnx_equals_torch"] = transcripts["onnx"] == transcripts["torch"]
    rows["audio_seconds"] = round(audio, 2)
    rows["files"] = len(files)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, help="a trained asr run (default: train one)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--long-seconds", type=float, default=60.0)
    parser.add_argument("--tiny", action="store_true", help="a small model and data (tests)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="asr-speed-") as scratch:
        work = Path(scratch)
        run = (
            mg.load(args.run)
            if args.run
            else train_example_recognizer(work, args.epochs, args.tiny)
        )
        bundle_path = run.export(work / "bundle", overwrite=True)
        clips = test_clips(run)
        workloads = {"clips": clips, "long": long_recordings(clips, args.long_seconds, work)}
        results = {}
        for workload, files in workloads.items():
            row = {"workload": workload, **measure(run, bundle_path, files, args.repeats)}
            results[workload] = row
            print(json.dumps(row))
        model = run.config.model
        print(
            json.dumps(
                {
                    "summary": "greedy CTC transcription on one CPU core",
                    "model": {k: getattr(model, k) for k in ("dim", "layers", "heads", "channels")},
                    "parameters": sum(p.numel() for p in run.model.parameters()),
                    "onnx_vs_torch_clips": round(
                        results["clips"]["torch"]["seconds"] / results["clips"]["onnx"]["seconds"],
                        2,
                    ),
                    "onnx_vs_torch_long": round(
                        results["long"]["torch"]["seconds"] / results["long"]["onnx"]["seconds"], 2
                    ),
                    "goal_x_real_time": 50,
                    "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                }
            )
        )


if __name__ == "__main__":
    main()
