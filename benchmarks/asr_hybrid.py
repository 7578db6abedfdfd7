"""Decoding a hybrid CTC/attention recognizer (`model.ctc_weight` below 1): its CTC head alone
(greedy, prefix beam search) against the joint CTC/attention beam search, by word and character
error rate on the test voices, and the decoding time of each.

Takes a trained hybrid run (e.g. `benchmarks/asr_digits.py --set model.ctc_weight=0.3 --set
model.decoder_layers=1`), runs the network once per test clip (CTC logits and encoder output,
windows stitched as `megalith transcribe` does), then decodes the same frames every way. One
thread; milliseconds per clip and the ratios against greedy come from the same run.

    python benchmarks/asr_hybrid.py --run RUN [--beam-size 4] [--weights 0.3,0.5]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import megalith as mg
from megalith.evaluate.speech import error_rates
from megalith.models.ctc_decoding import CTCDecoding
from megalith.models.joint_decoding import JointDecoder
from megalith.runtime.transcription import frame_scores, read_recordings
from megalith.transcribe.decode import CTCDecoder
from megalith.transcribe.transcriber import Transcriber


def test_frames(run: mg.Run) -> tuple[list[np.ndarray], list[str], float]:
    """Stitched (T, V + D) frames of every test clip, the references, and seconds of audio."""
    table, splits = run.data_splits()
    frame = splits["test"]
    audio, text = run.config.inputs[0].name, run.config.outputs[0].name
    paths = [Path(table.base_dir or ".") / p for p in frame[audio]]
    transcriber = Transcriber(run, decode_ctc_weight=run.config.model.ctc_weight)
    assert transcriber.joint is not None, "benchmarks/asr_hybrid.py takes a hybrid run"
    waves = read_recordings(paths, transcriber.windows.sample_rate, None)
    seconds = sum(len(w) for w in waves) / transcriber.windows.sample_rate
    frames = frame_scores(waves, transcriber.forward, transcriber.windows, 32)
    return frames, [str(t) for t in frame[text]], seconds


def score(decode: Callable[[np.ndarray], list[int]], tokenizer, frames, refs, seconds):
    start = time.perf_counter()
    hypotheses = [tokenizer.decode(decode(row)) for row in frames]
    spent = time.perf_counter() - start
    return error_rates(hypotheses, refs) | {
        "ms_per_clip": round(1000 * spent / max(len(frames), 1), 2),
        "decoding_x_real_time": round(seconds / max(spent, 1e-9), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a trained hybrid asr run")
    parser.add_argument("--beam-size", type=int, default=4)
    parser.add_argument("--weights", default="", help="CTC weights to try (default: the run's)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = mg.load(args.run)
    tokenizer = run.preprocessor.outputs[0].tokenizer
    vocab = int(run.model.padding_logits.shape[0])
    frames, refs, seconds = test_frames(run)

    def ctc(settings: CTCDecoding) -> Callable[[np.ndarray], list[int]]:
        decoder = CTCDecoder(settings, tokenizer)
        return lambda row: decoder(row[:, :vocab])

    decoders = {
        "ctc greedy": ctc(CTCDecoding()),
        f"ctc beam {args.beam_size}": ctc(CTCDecoding(beam_size=args.beam_size)),
    }
    weights = [float(w) for w in args.weights.split(",") if w] or [run.config.model.ctc_weight]
    for weight in weights:
        joint = JointDecoder(run.model, args.beam_size, weight)
        decoders[f"joint beam {args.beam_size}, ctc_weight {weight:g}"] = joint.from_frames
    results = {}
    for name, decode in decoders.items():
        results[name] = {"decoder": name, **score(decode, tokenizer, frames, refs, seconds)}
        print(json.dumps(results[name]))
    greedy = results["ctc greedy"]
    print(
        json.dumps(
            {
                "test_clips": len(refs),
                "audio_seconds": round(seconds, 1),
                "wer_vs_greedy": {
                    name: round(row["wer"] / max(greedy["wer"], 1e-9), 3)
                    for name, row in results.items()
                },
            }
        )
    )


if __name__ == "__main__":
    main()
