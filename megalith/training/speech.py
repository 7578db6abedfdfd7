"""How a speech recognizer (`model.arch: asr`) trains in the ordinary loop: its CTC loss, its
validation scores (WER / CER of greedy transcripts) and the check that CTC can align every row.

The loop itself is unchanged: `speech_job` swaps the job's `loss` (called like
megalith.training.losses.total_loss, so gradient accumulation, DDP and the step's token-share
normalisation work as for any text output) and its `evaluate`, and buckets the clips by length
(megalith.bucketing): each batch holds clips of similar length and is cut to its longest one plus
`speech_margin` samples, which leaves every real frame's logits as they were (the recognizer masks
what lies past a clip's end, and the margin covers what its STFT and convolutions read past it).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence

import torch

from megalith.bucketing import Bucketing, padded_lengths
from megalith.data.features import OutputFeature
from megalith.data.preprocess import Preprocessor
from megalith.data.specs import InputSpec
from megalith.data.tensors import TensorTable
from megalith.evaluate.speech import speech_evaluation
from megalith.models.asr import SUBSAMPLING, ASRConfig, check_ctc_fits
from megalith.models.hybrid_asr import hybrid_loss
from megalith.training.loop import TrainJob


def ctc_total_loss(
    features: Sequence[OutputFeature],
    outputs: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    tokens: Mapping[str, torch.Tensor] | None = None,
    class_weights: Mapping[str, torch.Tensor] | None = None,
    ctc_weight: float = 1.0,
) -> torch.Tensor:
    """The CTC loss of the one text output (weighted), in `total_loss`'s signature; `tokens`
    divides the summed loss by the step's share of target tokens. class_weights is unused.
    A hybrid model (ctc_weight < 1) adds its decoder's cross-entropy (hybrid_loss)."""
    (feature,) = features
    share = (tokens or {}).get(feature.name)
    framed = targets[feature.name]
    return feature.weight * hybrid_loss(outputs, framed, feature.name, ctc_weight, share)


def speech_loss(model_config: ASRConfig) -> Callable[..., torch.Tensor]:
    """`ctc_total_loss` with the model's ctc_weight."""
    return functools.partial(ctc_total_loss, ctc_weight=model_config.ctc_weight)


def speech_margin(audio: InputSpec) -> int:
    """Samples kept past a batch's longest clip so that cutting changes no real frame's logits:
    the log-mel of a clip of n samples has 1 + n // hop frames, the two stride-2 convolutions
    read up to 3 frames past the last real encoder frame's 4, so 2 * SUBSAMPLING hops cover
    them; a random time shift (augment.shift) may move speech that far past the end."""
    settings = audio.log_mel
    augment = audio.augment
    shift = round(augment.shift * settings.sample_rate) if augment is not None else 0
    return 2 * SUBSAMPLING * settings.hop_length + shift


def speech_job(job: TrainJob, preprocessor: Preprocessor, model_config: ASRConfig) -> TrainJob:
    """`job` with the CTC (or hybrid CTC/attention) loss, WER / CER validation and clips
    bucketed by length."""
    audio = preprocessor.input_specs[0]
    lengths = padded_lengths(job.train.inputs[audio.name])
    bucketing = Bucketing(lengths, (audio.name,), speech_margin(audio))
    evaluate = speech_evaluation(preprocessor)
    loss = speech_loss(model_config)
    return dataclasses.replace(job, loss=loss, evaluate=evaluate, bucketing=bucketing)


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
