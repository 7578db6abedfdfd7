"""How a speech recognizer (`model.arch: asr`) trains in the ordinary loop: its CTC loss, its
validation scores (WER / CER of greedy transcripts) and the check that CTC can align every row.

The loop itself is unchanged: `speech_job` swaps the job's `loss` (called like
megalith.training.losses.total_loss, so gradient accumulation, DDP and the step's token-share
normalisation work as for any text output) and its `evaluate`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import torch

from megalith.data.features import OutputFeature
from megalith.data.preprocess import Preprocessor
from megalith.data.tensors import TensorTable
from megalith.evaluate.speech import speech_evaluation
from megalith.models.asr import check_ctc_fits, ctc_loss
from megalith.training.loop import TrainJob


def ctc_total_loss(
    features: Sequence[OutputFeature],
    outputs: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    tokens: Mapping[str, torch.Tensor] | None = None,
    class_weights: Mapping[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """The CTC loss of the one text output (weighted), in `total_loss`'s signature; `tokens`
    divides the summed loss by the step's share of target tokens. class_weights is unused."""
    (feature,) = features
    share = (tokens or {}).get(feature.name)
    return feature.weight * ctc_loss(outputs[feature.name], targets[feature.name], share)


def speech_job(job: TrainJob, preprocessor: Preprocessor) -> TrainJob:
    """`job` with the CTC loss and WER / CER validation."""
    return dataclasses.replace(job, loss=ctc_total_loss, evaluate=speech_evaluation(preprocessor))


def check_speech_splits(
    tensors: Mapping[str, TensorTable], preprocessor: Preprocessor, origin: str
) -> None:
    """Every split's transcripts fit their clips' CTC frames (see check_ctc_fits).

    Raises:
        DataError: naming the split and the rows that do not fit.
    """
    audio, text = preprocessor.input_specs[0], preprocessor.output_specs[0]
    for split, table in tensors.items():
        check_ctc_fits(table, audio, text.name, f"{origin} ({split} split)")
