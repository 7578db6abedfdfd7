"""Knowledge distillation: the student's loss mixes the labels with its teacher's outputs.

Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network": for one output,

    loss = alpha * hard(student, labels) + (1 - alpha) * T^2 * KL(p_teacher/T || p_student/T)

where p/T is the softmax of the logits divided by the temperature T (T^2 keeps the soft term's
gradient on the scale of the hard one's as T changes). Binary outputs compare the two-class
probabilities (sigmoid, 1 - sigmoid); number outputs add the MSE to the teacher's output; text
outputs (language models, seq2seq) take the KL per token over the real (non-padding) target
tokens. The hard term is the ordinary loss (`megalith.training.losses.output_loss`): class
weights and label smoothing apply to it, not to the teacher's term.

Consistent views (Beyer et al. 2022, "Knowledge distillation: A good teacher is patient and
consistent"): with train-time augmentation the teacher reads the very images the student is
trained on, augmented (and mixed) the same way, not its own clean copy of the rows; the KD term
then matches the two functions on the same view, `KL(teacher(view) || student(view))`.

This module is pure torch; loading and checking the teacher run is `megalith.teacher`'s job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from megalith.configbase import ConfigModel
from megalith.data.features import OutputFeature
from megalith.data.tokenizers import PAD
from megalith.training.augment import BatchAugmenter, Mix, Tensors
from megalith.training.losses import output_loss

TEACHER_PREFIX = "teacher:"
"""Key prefix of the teacher's inputs, carried among a distilled run's train targets so that
every batch holds the teacher's encoding of the same rows (the model never sees targets)."""


class DistillConfig(ConfigModel):
    """How a student learns from its teacher (`teacher: RUN`)."""

    alpha: float = Field(0.5, ge=0, le=1)
    """Weight of the ordinary loss on the labels; 1 - alpha weights matching the teacher."""
    temperature: float = Field(2.0, gt=0)
    """Softens both models' probabilities before they are compared (T of Hinton et al. 2015)."""


def soft_loss(
    feature: OutputFeature,
    student: torch.Tensor,
    teacher: torch.Tensor,
    target: torch.Tensor,
    temperature: float,
    tokens: torch.Tensor | None = None,
) -> torch.Tensor:
    """The teacher term of one output, a scalar.

    Args:
        student, teacher: the same output of both models: category logits (B, K); binary
            logit (B,); number (B,) standardised like the student's targets; text next-token
            logits (B, T, V).
        target: the labels (text: (B, T) token ids, 0 = padding, whose positions are skipped).
        temperature: T; category, binary and text terms are multiplied by T^2.
        tokens: text only, the divisor of the summed token KL (see `step_token_shares`);
            by default the batch's real token count.
    """
    student, teacher = student.float(), teacher.float()
    if feature.type == "number":
        return F.mse_loss(student, teacher)
    scale = temperature * temperature
    if feature.type == "binary":  # KL of the two-class distributions (sigmoid, 1 - sigmoid)
        s, t = student / temperature, teacher / temperature
        p = torch.sigmoid(t)
        kl = p * (F.logsigmoid(t) - F.logsigmoid(s)) + (1 - p) * (
            F.logsigmoid(-t) - F.logsigmoid(-s)
        )
        return scale * kl.mean()
    log_s = F.log_softmax(student / temperature, dim=-1)
    log_t = F.log_softmax(teacher / temperature, dim=-1)
    kl = (log_t.exp() * (log_t - log_s)).sum(-1)  # (B,) or (B, T)
    if feature.type == "text":
        real = target != PAD
        divisor = tokens if tokens is not None else real.sum().clamp(min=1)
        return scale * (kl * real).sum() / divisor
    return scale * kl.mean()


def distillation_loss(
    features: Sequence[OutputFeature],
    outputs: Mapping[str, torch.Tensor],
    teacher_outputs: Mapping[str, torch.Tensor],
    targets: Mapping[str, torch.Tensor],
    config: DistillConfig,
    tokens: Mapping[str, torch.Tensor] | None = None,
    class_weights: Mapping[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """sum over outputs of weight * (alpha * hard + (1 - alpha) * soft), a scalar; the
    distilled counterpart of `megalith.training.losses.total_loss`."""
    tokens, class_weights = tokens or {}, class_weights or {}
    losses = []
    for feature in features:
        name = feature.name
        hard = output_loss(
            feature, outputs[name], targets[name], tokens.get(name), class_weights.get(name)
        )
        soft = soft_loss(
            feature,
            outputs[name],
            teacher_outputs[name],
            targets[name],
            config.temperature,
            tokens.get(name),
        )
        losses.append(feature.weight * (config.alpha * hard + (1 - config.alpha) * soft))
    return torch.stack(losses).sum() if len(losses) > 1 else losses[0]


@dataclass(frozen=True)
class OutputAlignment:
    """How one teacher output is put into the student's terms before the two are compared."""

    order: tuple[int, ...] | None = None
    """category: the teacher's index of each student class (classes matched by name)."""
    flip: bool = False
    """binary: the teacher's positive value is the student's negative one."""
    scale: float = 1.0
    """number: teacher standardised value -> student standardised value, `x * scale + shift`."""
    shift: float = 0.0

    def apply(self, output: torch.Tensor) -> torch.Tensor:
        if self.order is not None:
            output = output[..., list(self.order)]
        if self.flip:
            output = -output
        if self.scale != 1.0 or self.shift != 0.0:
            output = output * self.scale + self.shift
        return output


class DistillationLoss:
    """The training loss of a student: runs the teacher on each batch, then `distillation_loss`.

    The teacher stays in eval mode, runs without autograd (its weights never receive a
    gradient) under the student's autocast, and reads its own encoding of the batch's rows:
    the targets' `teacher:NAME` tensors. It is moved to the batch's device on first use and
    compiled when the student is.
    """

    def __init__(
        self,
        teacher: nn.Module,
        config: DistillConfig,
        alignments: Mapping[str, OutputAlignment],
        compile_teacher: bool = False,
    ) -> None:
        self.teacher = teacher.eval().requires_grad_(False)
        self.config = config
        self.alignments = dict(alignments)
        self.compile_teacher = compile_teacher
        self._forward: Callable[..., dict[str, torch.Tensor]] | None = None
        self._view: Tensors = {}

    def see(self, view: Mapping[str, torch.Tensor]) -> None:
        """The student's augmented images of the coming batch, by input name: the teacher
        reads these instead of its own encoding of the rows (`ConsistentAugmenter`)."""
        self._view = dict(view)

    def teacher_outputs(self, targets: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The teacher's aligned outputs for the batch whose targets are `targets`."""
        inputs = {
            key.removeprefix(TEACHER_PREFIX): value
            for key, value in targets.items()
            if key.startswith(TEACHER_PREFIX)
        }
        for name, image in self._view.items():
            if name in inputs:
                inputs[name] = _resized(image, inputs[name].shape[-2:])
        forward = self._forward
        if forward is None:
            device = next(iter(inputs.values())).device
            self.teacher.to(device)
            forward = torch.compile(self.teacher) if self.compile_teacher else self.teacher
            self._forward = forward
        with torch.no_grad():
            outputs = forward(inputs)
        return {name: align.apply(outputs[name]) for name, align in self.alignments.items()}

    def __call__(
        self,
        features: Sequence[OutputFeature],
        outputs: dict[str, torch.Tensor],
        targets: dict[str, torch.Tensor],
        tokens: Mapping[str, torch.Tensor] | None = None,
        class_weights: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        teacher = self.teacher_outputs(targets)
        return distillation_loss(
            features, outputs, teacher, targets, self.config, tokens, class_weights
        )


def _resized(image: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """A (B, C, H, W) batch at the teacher's image size (its own encoding's H, W)."""
    if image.shape[-2:] == size:
        return image
    return F.interpolate(image.float(), size=tuple(size), mode="bilinear", antialias=True)


class ConsistentAugmenter(BatchAugmenter):
    """A student's batch augmenter that shows its teacher the augmented batch: each view it
    makes (images transformed, rows mixed) is handed to `loss.see` before the loss runs, so
    teacher and student see the same view of every row (Beyer et al. 2022)."""

    def __init__(self, augmenter: BatchAugmenter, loss: DistillationLoss) -> None:
        super().__init__(augmenter.pipelines, augmenter.mixup, augmenter.seed, augmenter.rank)
        self.loss = loss

    def __call__(self, inputs: Tensors, epoch: int, batch: int) -> tuple[Tensors, Mix | None]:
        out, mix = super().__call__(inputs, epoch, batch)
        changed = list(out) if mix is not None else list(self.pipelines)
        self.loss.see({name: out[name] for name in changed})
        return out, mix
