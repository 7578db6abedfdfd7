"""The teacher of a distilled run sees exactly the student's view of each batch: the same rows
under shuffling, the same augmented (and mixed) images, in eval mode (Beyer et al. 2022)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest
import torch
from torch import nn

from megalith.config import validate_config
from megalith.data.specs import InputSpec
from megalith.data.tensors import TensorTable
from megalith.teacher import Teacher
from megalith.training.augment import build_augmenter
from megalith.training.distill import TEACHER_PREFIX, DistillConfig, OutputAlignment
from megalith.training.loop import TrainJob, train_loop

SPEC = InputSpec("image", "image", shape=(1, 8, 8), mean=(0.5,), std=(0.3,))


class _Spy(nn.Module):
    """A linear classifier over 8x8 images that records every image batch it is given."""

    def __init__(self, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.layer = nn.Linear(64, 3)
        self.seen: list[tuple[bool, torch.Tensor]] = []

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        image = inputs["image"]
        self.seen.append((self.training, image.detach().float().clone()))
        return {"label": self.layer(self.dropout(image.float().flatten(1) / 255))}


def _job(augment: dict[str, Any] | None, folder: Path) -> tuple[TrainJob, _Spy, _Spy]:
    image: dict[str, Any] = {"name": "image", "type": "image"}
    if augment is not None:
        image["augment"] = augment
    config = validate_config(
        {
            "data": {"source": "builtin:digits"},
            "inputs": [image],
            "outputs": [{"name": "label", "type": "category"}],
            "model": {"arch": "mlp"},
            "train": {"epochs": 2, "batch_size": 8, "device": "cpu"},
        }
    )
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 1, 8, 8), generator=gen, dtype=torch.uint8)
    labels = torch.randint(0, 3, (40,), generator=gen)
    table = TensorTable({"image": images}, {"label": labels}, np.arange(40))
    torch.manual_seed(0)
    student, teacher_model = _Spy(0.0), _Spy(0.5)
    augmenter = build_augmenter(config.inputs, config.outputs, [SPEC], seed=0)
    job = TrainJob(student, config.outputs, [], table, None, config.train, 0, folder)
    job.augment = augmenter
    teacher = Teacher(
        run=cast(Any, SimpleNamespace(model=teacher_model)),
        config=DistillConfig(),
        alignments={"label": OutputAlignment()},
        inputs={TEACHER_PREFIX + "image": images.clone()},
    )
    return teacher.distill(job), student, teacher_model


@pytest.mark.parametrize(
    "augment",
    [None, {"flip": "both", "rotate": 30, "shift": 0.2}, {"crop": 0.6, "mixup": 0.4}],
    ids=["plain", "augmented", "mixup"],
)
def test_the_teacher_sees_the_students_rows_and_view(augment: Any, tmp_path: Path) -> None:
    job, student, teacher = _job(augment, tmp_path)
    train_loop(job)
    trained = [x for training, x in student.seen if training]
    assert len(trained) == 10  # 2 epochs of 5 shuffled batches
    assert all(not training for training, _ in teacher.seen)  # soft targets without dropout
    # mixup runs the loss (and so the teacher) twice per batch: own and partner targets
    views = [x for _, x in teacher.seen][:: 2 if augment and augment.get("mixup") else 1]
    assert len(views) == len(trained)
    for student_view, teacher_view in zip(trained, views, strict=True):
        torch.testing.assert_close(teacher_view, student_view, rtol=0, atol=0)
    if augment is not None:  # the views are not the stored rows
        stored = job.train.inputs["image"].float()
        assert not any((view[:, None] == stored[None]).flatten(2).all(-1).any() for view in trained)


def test_a_teacher_of_another_size_sees_the_view_resized() -> None:
    from megalith.training.distill import DistillationLoss

    seen: list[torch.Tensor] = []

    class Teacher16(nn.Module):
        def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            seen.append(inputs["image"])
            return {"label": inputs["image"].float().mean((1, 2, 3))[:, None].repeat(1, 3)}

    loss = DistillationLoss(Teacher16(), DistillConfig(), {"label": OutputAlignment()})
    view = torch.rand(4, 1, 8, 8) * 255
    loss.see({"image": view})
    own = torch.zeros(4, 1, 16, 16, dtype=torch.uint8)
    loss.teacher_outputs({TEACHER_PREFIX + "image": own})
    assert seen[0].shape == (4, 1, 16, 16)
    assert seen[0].mean().item() == pytest.approx(view.mean().item(), rel=0.05)


def test_an_augmented_input_of_other_channels_is_refused_before_training() -> None:
    from megalith.errors import ConfigError
    from megalith.teacher import _check_views

    config = validate_config(
        {
            "data": {"source": "builtin:digits"},
            "inputs": [{"name": "image", "type": "image", "augment": {"flip": "horizontal"}}],
            "outputs": [{"name": "label", "type": "category"}],
            "model": {"arch": "mlp"},
        }
    )
    rgb = InputSpec("image", "image", shape=(3, 8, 8), mean=(0.5,) * 3, std=(0.3,) * 3)
    student = cast(Any, SimpleNamespace(input_specs=[SPEC]))
    teacher = cast(Any, SimpleNamespace(path="runs/t", preprocessor=student))
    _check_views(config, student, teacher)  # the same channels: fine
    teacher.preprocessor = SimpleNamespace(input_specs=[rgb])
    with pytest.raises(ConfigError, match=r"inputs.image: .* give inputs.image.channels: 3"):
        _check_views(config, student, teacher)
