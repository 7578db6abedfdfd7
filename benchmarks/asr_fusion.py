"""Decoding a trained speech recognizer: greedy CTC, CTC prefix beam search, and beam search with
a GPT language model (shallow fusion), by word and character error rate on held-out voices.

Takes a trained `model.arch: asr` run (e.g. the one benchmarks/asr_digits.py or `megalith train`
wrote), trains a small character GPT on the transcripts of the run's *train* split (seconds),
computes the recognizer's CTC logits once per validation and test clip, and decodes them:

- greedy (best path), the run's default;
- prefix beam search with `--beam-size` prefixes, no language model;
- the same beam fused with the GPT, lm_weight and token_bonus chosen on the validation voices
  from a small grid, then scored on the test voices.

WER / CER by jiwer, over whole splits. Prints one JSON object per decoder and split, then the
test WER ratios against greedy. Decoding time per clip is printed too (one thread).

    python benchmarks/asr_fusion.py --run RUN [--beam-size 8] [--lm-epochs 8]
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import megalith as mg
from megalith.evaluate.speech import error_rates
from megalith.models.ctc_decoding import CTCDecoding
from megalith.runtime.transcription import read_recordings
from megalith.transcribe.decode import CTCDecoder
from megalith.transcribe.shallow_fusion import GPTLanguageModel
from megalith.transcribe.transcriber import Transcriber

WEIGHTS = (0.2, 0.4, 0.7)
BONUSES = (0.0, 0.5, 1.0)


def train_transcript_lm(run: mg.Run, folder: Path, epochs: int) -> mg.Run:
    """A character GPT on the run's train-split transcripts, one per line, in 10 files."""
    _, splits = run.data_splits()
    text_column = run.config.outputs[0].name
    lines = [str(t) for t in splits["train"][text_column]]
    corpus = folder / "corpus"
    corpus.mkdir()
    for part in range(10):
        (corpus / f"part{part}.txt").write_text("\n".join(lines[part::10]) + "\n")
    config = {
        "name": "transcript-lm",
        "seed": 0,
        "data": {"source": str(corpus), "format": "text", "split": {"val": 0.1, "test": 0.1}},
        "outputs": [{"name": "text", "type": "text", "tokenizer": "char", "vocab_size": 64}],
        "model": {"arch": "gpt", "context": 64, "layers": 2, "heads": 2, "dim": 64},
        "train": {"epochs": epochs, "batch_size": 16, "optimizer": {"name": "adamw", "lr": 0.005}},
    }
    mg.train(config, output_dir=folder / "lm")
    return mg.load(folder / "lm")


def split_logits(run: mg.Run, split: str) -> tuple[list[np.ndarray], list[str]]:
    """Stitched CTC logits (T, V) of every clip of `split`, and their reference transcripts."""
    from megalith.runtime.transcription import frame_scores

    table, splits = run.data_splits()
    frame = splits[split]
    audio, text = run.config.inputs[0].name, run.config.outputs[0].name
    paths = [Path(table.base_dir or ".") / p for p in frame[audio]]
    transcriber = Transcriber(run)
    waves = read_recordings(paths, transcriber.windows.sample_rate, None)
    logits = frame_scores(waves, transcriber.forward, transcriber.windows, 32)
    return logits, [str(t) for t in frame[text]]


def score(decoder: CTCDecoder, tokenizer: Any, logits: list[np.ndarray], refs: list[str]):
    start = time.perf_counter()
    hypotheses = [tokenizer.decode(decoder(row)) for row in logits]
    seconds = (time.perf_counter() - start) / max(len(logits), 1)
    return error_rates(hypotheses, refs) | {"ms_per_clip": round(1000 * seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a trained asr run")
    parser.add_argument("--beam-size", type=int, default=8)
    parser.add_argument("--lm-epochs", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = mg.load(args.run)
    tokenizer = run.preprocessor.outputs[0].tokenizer
    data = {split: split_logits(run, split) for split in ("val", "test")}
    with tempfile.TemporaryDirectory(prefix="asr-fusion-") as scratch:
        lm_run = train_transcript_lm(run, Path(scratch), args.lm_epochs)
        lm = GPTLanguageModel(lm_run, tokenizer)
        decoders = {
            "greedy": CTCDecoder(CTCDecoding(), tokenizer),
            "beam": CTCDecoder(CTCDecoding(beam_size=args.beam_size), tokenizer),
        }
        best: tuple[float, float, float] = (float("inf"), 0.0, 0.0)
        for weight, bonus in itertools.product(WEIGHTS, BONUSES):
            settings = CTCDecoding(
                beam_size=args.beam_size, lm="lm", lm_weight=weight, token_bonus=bonus
            )
            wer = score(CTCDecoder(settings, tokenizer, lm), tokenizer, *data["val"])["wer"]
            best = min(best, (wer, weight, bonus))
        _, weight, bonus = best
        settings = CTCDecoding(
            beam_size=args.beam_size, lm="lm", lm_weight=weight, token_bonus=bonus
        )
        decoders["beam+lm"] = CTCDecoder(settings, tokenizer, lm)
        results: dict[str, dict[str, Any]] = {}
        for (name, decoder), split in itertools.product(decoders.items(), ("val", "test")):
            row = {"decoder": name, "split": split, **score(decoder, tokenizer, *data[split])}
            if name == "beam+lm":
                row |= {"lm_weight": weight, "token_bonus": bonus}
            results[f"{name}/{split}"] = row
            print(json.dumps(row))
    greedy = results["greedy/test"]["wer"]
    print(
        json.dumps(
            {
                "test_clips": len(data["test"][1]),
                "beam_wer_vs_greedy": round(results["beam/test"]["wer"] / max(greedy, 1e-9), 3),
                "fused_wer_vs_greedy": round(results["beam+lm/test"]["wer"] / max(greedy, 1e-9), 3),
            }
        )
    )


if __name__ == "__main__":
    main()
