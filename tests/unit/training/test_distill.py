"""Distillation losses against numbers worked by hand, and the teacher kept out of autograd."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from megalith.data.features import BinaryOutput, CategoryOutput, NumberOutput, TextOutput
from megalith.training.distill import (
    TEACHER_PREFIX,
    DistillationLoss,
    DistillConfig,
    OutputAlignment,
    distillation_loss,
    soft_loss,
)
from megalith.training.losses import output_loss


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_category_loss_is_hintons_mix_worked_by_hand() -> None:
    # one row, student logits (2, 0), teacher (0, 0), label 0, T = 2, alpha = 0.25
    feature = CategoryOutput(name="y")
    student, teacher = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 0.0]])
    config = DistillConfig(alpha=0.25, temperature=2.0)
    loss = distillation_loss(
        [feature], {"y": student}, {"y": teacher}, {"y": torch.tensor([0])}, config
    )
    hard = math.log(1 + math.exp(-2))  # -log softmax(2, 0)[0]
    p_student = [math.e / (math.e + 1), 1 / (math.e + 1)]  # softmax((2, 0) / 2)
    kl = sum(0.5 * math.log(0.5 / p) for p in p_student)  # teacher: (0.5, 0.5)
    assert loss.item() == pytest.approx(0.25 * hard + 0.75 * 4 * kl, rel=1e-6)


def test_binary_loss_compares_two_class_probabilities() -> None:
    feature = BinaryOutput(name="y")
    student, teacher = torch.tensor([1.0]), torch.tensor([-1.0])
    config = DistillConfig(alpha=0.5, temperature=1.0)
    loss = distillation_loss(
        [feature], {"y": student}, {"y": teacher}, {"y": torch.tensor([1.0])}, config
    )
    p_t, p_s = _sigmoid(-1), _sigmoid(1)
    kl = p_t * math.log(p_t / p_s) + (1 - p_t) * math.log((1 - p_t) / (1 - p_s))
    hard = -math.log(_sigmoid(1))
    assert loss.item() == pytest.approx(0.5 * hard + 0.5 * kl, rel=1e-6)


def test_number_loss_adds_the_mse_to_the_teacher() -> None:
    feature = NumberOutput(name="y")
    student, teacher, labels = torch.tensor([1.0, 3.0]), torch.zeros(2), torch.ones(2)
    config = DistillConfig(alpha=0.5, temperature=7.0)  # T plays no part for numbers
    loss = distillation_loss([feature], {"y": student}, {"y": teacher}, {"y": labels}, config)
    assert loss.item() == pytest.approx(0.5 * (0 + 4) / 2 + 0.5 * (1 + 9) / 2)


def test_text_loss_is_the_kl_per_real_token() -> None:
    # (B=1, T=2, V=3); the second target position is padding and must not count
    feature = TextOutput(name="t")
    student = torch.tensor([[[1.0, 0.0, 0.0], [5.0, -5.0, 0.0]]])
    teacher = torch.tensor([[[0.0, 0.0, 0.0], [-5.0, 5.0, 0.0]]])
    target = torch.tensor([[2, 0]])
    kl = soft_loss(feature, student, teacher, target, temperature=1.0).item()
    p_s = [math.e / (math.e + 2), 1 / (math.e + 2), 1 / (math.e + 2)]
    assert kl == pytest.approx(sum(math.log((1 / 3) / p) / 3 for p in p_s), rel=1e-6)


def test_hard_term_keeps_label_smoothing_and_class_weights() -> None:
    feature = CategoryOutput(name="y", label_smoothing=0.1)
    student = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    labels, weights = torch.tensor([0, 2]), torch.tensor([1.0, 2.0, 3.0])
    config = DistillConfig(alpha=1.0)  # the teacher's term weighs nothing
    loss = distillation_loss(
        [feature], {"y": student}, {"y": student}, {"y": labels}, config, None, {"y": weights}
    )
    expected = F.cross_entropy(student, labels, weight=weights, label_smoothing=0.1)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss.item() == pytest.approx(
        output_loss(feature, student, labels, None, weights).item(), rel=1e-6
    )


def test_alignment_reorders_flips_and_rescales() -> None:
    logits = torch.tensor([[1.0, 2.0, 3.0]])
    assert OutputAlignment(order=(2, 0, 1)).apply(logits).tolist() == [[3.0, 1.0, 2.0]]
    assert OutputAlignment(flip=True).apply(torch.tensor([0.5])).tolist() == [-0.5]
    # teacher standardised with mean 10, std 2; student with mean 8, std 4: 1.0 -> 12 -> 1.0
    value = OutputAlignment(scale=2 / 4, shift=(10 - 8) / 4).apply(torch.tensor([1.0]))
    assert value.item() == pytest.approx(1.0)


class _Linear(nn.Module):
    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.layer = nn.Linear(4, 3)

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"y": self.layer(inputs["x"])}


def test_teacher_gets_no_gradient_and_keeps_its_weights() -> None:
    teacher, student = _Linear(0), _Linear(1)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    loss_fn = DistillationLoss(teacher, DistillConfig(alpha=0.0), {"y": OutputAlignment()})
    optimizer = torch.optim.SGD([*student.parameters(), *teacher.parameters()], lr=0.5)
    x = torch.randn(16, 4)
    targets = {"y": torch.randint(0, 3, (16,)), TEACHER_PREFIX + "x": x}
    losses = []
    for _ in range(20):
        loss = loss_fn([CategoryOutput(name="y")], student({"x": x}), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(p.grad is None for p in teacher.parameters())
    assert not teacher.training
    for name, value in teacher.state_dict().items():
        assert torch.equal(value, before[name])
    assert losses[-1] < 0.5 * losses[0]  # the student moves towards the teacher
