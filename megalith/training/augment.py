"""Train-time image augmentation of whole batches, on the training device, with kornia.

Each image input's `augment:` settings (megalith.data.features.image_augment) become one kornia
`AugmentationSequential`: random resized crop, flips, an affine warp (rotation and shift) and a
colour jitter, each drawn per image. The batch is augmented after it is gathered, so the
augmented pixels are never stored; evaluation goes through `evaluate_table`, which never calls
this, so predictions, metrics and exports see the images as they are.

Determinism: each batch's random draws come from a generator seeded by (run seed, epoch, batch,
process rank) inside `torch.random.fork_rng`, so the augmentation of a batch does not depend on
what ran before it; a run resumed mid-epoch draws the same transformations as the uninterrupted
one (exact resume), and the global random state the loop uses (dropout) is left untouched.

Mixup (Zhang et al. 2018, "mixup: Beyond Empirical Risk Minimization"): one lambda ~ Beta(a, a)
per batch, images x = lambda * x_i + (1 - lambda) * x_j with j a permutation of the batch, and
the loss lambda * L(y_i) + (1 - lambda) * L(y_j). For cross-entropy this is the loss against the
mixed one-hot targets; for binary cross-entropy against the mixed 0/1 labels; for a number
output (MSE) it is the squared error to the mixed target plus a constant, so every output type
of the feature model trains on the same mixed rows. It needs every input to be an image (a
table column cannot be blended) and refuses text outputs.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from megalith.data.features import InputFeature, OutputFeature
from megalith.data.features.image import ImageInput
from megalith.data.features.image_augment import ImageAugment, resolve_augment
from megalith.data.specs import InputSpec
from megalith.errors import ConfigError

Tensors = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Mix:
    """One batch's mixup: weight `lam` for each row's own targets, 1 - lam for row `partner`."""

    lam: float
    partner: torch.Tensor
    """(B,) int64: the row each row was blended with."""

    def partner_targets(self, targets: Mapping[str, torch.Tensor]) -> Tensors:
        """Each row's partner's targets."""
        return {name: y[self.partner] for name, y in targets.items()}


class BatchAugmenter:
    """Augments the image inputs of a training batch: float (B, C, H, W) on a 0-255 scale out."""

    def __init__(
        self, pipelines: Mapping[str, nn.Module], mixup: float, seed: int, rank: int = 0
    ) -> None:
        self.pipelines = dict(pipelines)
        self.mixup = mixup
        self.seed, self.rank = seed, rank

    def __call__(self, inputs: Tensors, epoch: int, batch: int) -> tuple[Tensors, Mix | None]:
        """The batch's inputs with its images transformed, and its mixup (None when off)."""
        device = next(iter(inputs.values())).device
        cuda = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(_batch_seed(self.seed, epoch, batch, self.rank))
            out = dict(inputs)
            with torch.no_grad():
                for name, pipeline in self.pipelines.items():
                    pixels = inputs[name].float() / 255.0  # kornia works on 0-1 floats
                    out[name] = pipeline(pixels).clamp_(0.0, 1.0) * 255.0
                mix = self._mix(out, device) if self.mixup > 0 else None
        return out, mix

    def _mix(self, inputs: Tensors, device: torch.device) -> Mix:
        rows = next(iter(inputs.values())).shape[0]
        alpha = torch.tensor(self.mixup)
        lam = float(torch.distributions.Beta(alpha, alpha).sample())
        partner = torch.randperm(rows).to(device)
        for name, x in inputs.items():
            inputs[name] = lam * x.float() + (1 - lam) * x.float()[partner]
        return Mix(lam, partner)


def augment_batch(
    augmenter: BatchAugmenter | None, inputs: Tensors, epoch: int, batch: int
) -> tuple[Tensors, Mix | None]:
    """The inputs to train on for batch `batch` of `epoch` (unchanged without an augmenter)."""
    if augmenter is None:
        return inputs, None
    return augmenter(inputs, epoch, batch)


def mixed_loss(
    mix: Mix | None,
    loss: Callable[..., torch.Tensor],
    features: Sequence[OutputFeature],
    outputs: Tensors,
    targets: Tensors,
    *rest: object,
) -> torch.Tensor:
    """`loss(features, outputs, targets, *rest)`; with mixup, lam times that plus (1 - lam)
    times the loss against the partner rows' targets."""
    own = loss(features, outputs, targets, *rest)
    if mix is None:
        return own
    return mix.lam * own + (1 - mix.lam) * loss(
        features, outputs, mix.partner_targets(targets), *rest
    )


def _batch_seed(seed: int, epoch: int, batch: int, rank: int) -> int:
    """A distinct 63-bit seed per (seed, epoch, batch, rank)."""
    mixed = (seed * 1_000_003 + epoch) * 1_000_003 + batch
    return (mixed * 1_009 + rank) % (2**63 - 1)


def kornia_pipeline(settings: ImageAugment, spec: InputSpec) -> nn.Module:
    """The kornia transformations for one image input of shape spec.shape (C, H, W)."""
    import kornia.augmentation as K

    channels, height, width = spec.shape
    steps: list[Any] = []  # kornia augmentations
    if settings.crop is not None:
        steps.append(K.RandomResizedCrop((height, width), scale=(settings.crop, 1.0)))
    if settings.flip in ("horizontal", "both"):
        steps.append(K.RandomHorizontalFlip())
    if settings.flip in ("vertical", "both"):
        steps.append(K.RandomVerticalFlip())
    if settings.rotate or settings.shift:
        shift = (settings.shift, settings.shift) if settings.shift else None
        steps.append(K.RandomAffine(degrees=settings.rotate, translate=shift, p=1.0))
    if settings.color:
        saturation = settings.color if channels == 3 else 0.0
        steps.append(
            K.ColorJiggle(brightness=settings.color, contrast=settings.color, saturation=saturation)
        )
    return K.AugmentationSequential(*steps)


def build_augmenter(
    inputs: Sequence[InputFeature],
    outputs: Sequence[OutputFeature],
    specs: Sequence[InputSpec],
    seed: int,
    rank: int = 0,
) -> BatchAugmenter | None:
    """The batch augmenter the image inputs' `augment:` settings ask for; None when none does.

    Raises:
        ConfigError: augmentation is asked for but kornia is not installed, or mixup is asked
            for with a non-image input or a text output.
    """
    settings = {
        feature.name: resolve_augment(feature.augment)
        for feature in inputs
        if isinstance(feature, ImageInput)
    }
    settings = {name: s for name, s in settings.items() if s.enabled}
    if not settings:
        return None
    first = next(iter(settings))
    if importlib.util.find_spec("kornia") is None:
        raise ConfigError(
            f"inputs.{first}.augment: image augmentation needs kornia; install it with "
            "pip install 'megalith[vision]', or remove augment"
        )
    mixup = max(s.mixup for s in settings.values())
    if mixup:
        _check_mixup(inputs, outputs, settings)
    by_name = {spec.name: spec for spec in specs}
    pipelines = {
        name: kornia_pipeline(s, by_name[name])
        for name, s in settings.items()
        if s.model_copy(update={"mixup": 0.0}).enabled
    }
    return BatchAugmenter(pipelines, mixup, seed, rank)


def _check_mixup(
    inputs: Sequence[InputFeature],
    outputs: Sequence[OutputFeature],
    settings: Mapping[str, ImageAugment],
) -> None:
    name = next(n for n, s in settings.items() if s.mixup)
    others = [feature.name for feature in inputs if not isinstance(feature, ImageInput)]
    if others:
        raise ConfigError(
            f"inputs.{name}.augment.mixup: mixup blends whole rows, and input '{others[0]}' is "
            "not an image; set mixup: 0 or train on images alone"
        )
    texts = [feature.name for feature in outputs if feature.type == "text"]
    if texts:
        raise ConfigError(
            f"inputs.{name}.augment.mixup: output '{texts[0]}' is text, which mixup cannot "
            "blend; set mixup: 0"
        )
    values = {s.mixup for s in settings.values()}
    if len(values) > 1:
        raise ConfigError(
            f"inputs.{name}.augment.mixup: every image input blends with the same rows, so "
            "give them all the same mixup value"
        )
