"""Speech recognition scores: CTC loss, word and character error rates of greedy transcripts.

WER = (substitutions + deletions + insertions) / reference words, over a whole split (the errors
of every utterance summed, then divided: long utterances weigh more, as in every ASR benchmark);
CER the same over characters. Both are computed by jiwer (its default transforms: surrounding
and repeated spaces removed, case kept), so they equal what the field reports. A WER can exceed
1 when the model inserts words. Transcripts are the model's greedy CTC decoding
(megalith.models.asr.greedy_ctc); references are the targets decoded by the same tokenizer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from megalith.batching import forward_batches
from megalith.data.features import OutputFeature
from megalith.data.preprocess import Preprocessor
from megalith.data.specs import OutputSpec
from megalith.data.tensors import TensorTable
from megalith.models.asr import ASR, ctc_loss, ctc_targets, greedy_ctc
from megalith.models.joint_decoding import JointDecoder

SPEECH_METRICS = ("loss", "wer", "cer")
"""What evaluating a speech recognizer reports (all lower-is-better)."""

Decoder = Callable[[torch.Tensor], list[str]]
"""Token ids (B, L) -> one text per row (the output tokenizer's decode)."""


def error_rates(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """{'wer': ..., 'cer': ...} of hypotheses against references, over all pairs (jiwer).

    Raises:
        ValueError: the two lists differ in length.
    """
    import jiwer  # the `asr` extra; only speech runs need it

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    if not references:
        return {}
    refs, hyps = list(references), list(hypotheses)
    return {"wer": float(jiwer.wer(refs, hyps)), "cer": float(jiwer.cer(refs, hyps))}


LogitsDecoder = Callable[[torch.Tensor], torch.Tensor] | JointDecoder
"""CTC logits (B, T', V) -> int64 ids (B, L), PAD-padded: greedy_ctc, or a beam search
(megalith.transcribe.transcriber.logits_decoder); or a hybrid model's joint CTC/attention
decoding, which also reads the encoder output."""


def decode_outputs(
    decode: LogitsDecoder, outputs: dict[str, torch.Tensor], name: str
) -> torch.Tensor:
    """A recognizer's outputs for one batch -> int64 ids (B, L) by `decode`."""
    if isinstance(decode, JointDecoder):
        return decode.from_outputs(outputs)
    return decode(outputs[name])


def transcribe_ids(
    model: ASR,
    table: TensorTable,
    batch_size: int,
    device: torch.device,
    dtype: Any,
    ctc_decode: LogitsDecoder = greedy_ctc,
) -> torch.Tensor:
    """CTC ids of every row (greedy unless `ctc_decode` says otherwise): int64 (N, L) on the
    CPU, PAD-padded."""
    pieces = [
        decode_outputs(ctc_decode, outputs, model.name)
        for _, outputs in forward_batches(model, table, batch_size, device, dtype)
    ]
    return _stacked(pieces)


def evaluate_speech(
    model: nn.Module,
    table: TensorTable,
    outputs: Sequence[OutputFeature],
    specs: Sequence[OutputSpec],
    batch_size: int,
    device: torch.device,
    dtype: torch.dtype | None,
    *,
    decode: Decoder,
    ctc_decode: LogitsDecoder = greedy_ctc,
) -> dict[str, float]:
    """{'loss', 'wer', 'cer'} of a speech recognizer over every row of `table`.

    `loss` is the CTC negative log-likelihood per target token (summed over the split, then
    divided); called like megalith.evaluate.evaluation.evaluate_table, with the tokenizer's
    `decode` (the training loop takes it as TrainJob.evaluate).
    """
    assert isinstance(model, ASR), "evaluate_speech takes a model.arch asr model"
    feature = outputs[0]
    nll = torch.zeros((), dtype=torch.float64)
    tokens, written, targets = 0, [], []
    for batch, predicted in forward_batches(model, table, batch_size, device, dtype):
        logits, framed = predicted[model.name], batch.targets[model.name]
        _, lengths = ctc_targets(framed)
        count = int(lengths.sum())
        nll += float(ctc_loss(logits, framed)) * max(count, 1)
        tokens += count
        written.append(decode_outputs(ctc_decode, predicted, model.name))
        targets.append(framed.cpu())
    if not targets:
        return {}
    hypotheses = decode(_stacked(written))
    references = decode(_stacked(targets))
    scores = {"loss": feature.weight * float(nll) / max(tokens, 1)}
    scores.update(error_rates(hypotheses, references))
    return scores


def speech_evaluation(
    preprocessor: Preprocessor, ctc_decode: LogitsDecoder = greedy_ctc
) -> Callable[..., dict[str, float]]:
    """`evaluate_speech` with the run's tokenizer (and CTC decoding): called like
    `evaluate_table`."""
    name = preprocessor.output_specs[0].name

    def decode(ids: torch.Tensor) -> list[str]:
        return [str(text) for text in preprocessor.decode({name: ids})[name]]

    return functools.partial(evaluate_speech, decode=decode, ctc_decode=ctc_decode)


def utterance_errors(
    hypotheses: Sequence[str], references: Sequence[str]
) -> list[dict[str, float | int]]:
    """Per utterance: its word errors, reference words and WER (the report's best / worst)."""
    import jiwer

    rows: list[dict[str, float | int]] = []
    for hypothesis, reference in zip(hypotheses, references, strict=True):
        words = len(reference.split())
        if words == 0:
            rows.append({"errors": len(hypothesis.split()), "words": 0, "wer": 0.0})
            continue
        out = jiwer.process_words(reference, hypothesis)
        errors = out.substitutions + out.deletions + out.insertions
        rows.append({"errors": errors, "words": words, "wer": errors / words})
    return rows


def _stacked(pieces: list[torch.Tensor]) -> torch.Tensor:
    """Row blocks of ids (b, L_i) -> (sum b, max L_i), PAD (0) on the right."""
    if not pieces:
        return torch.zeros((0, 1), dtype=torch.long)
    width = max(p.shape[1] for p in pieces)
    return torch.cat([torch.nn.functional.pad(p, (0, width - p.shape[1])) for p in pieces])
