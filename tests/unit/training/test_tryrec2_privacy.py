"""Private training with class weights: a row's clipped gradient must not depend on the other
rows of its batch, so per-sample and ghost clipping take the same step."""

from __future__ import annotations

import torch
from torch import nn

from megalith.data.features import BinaryOutput, CategoryOutput, OutputFeature
from megalith.training.losses import total_loss
from megalith.training.privacy import PrivacyConfig, PrivateTraining


class _Bag(nn.Module):
    def __init__(self, classes: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embedding = nn.Embedding(40, 6)
        self.head = nn.Linear(6, classes)

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logits = self.head(self.embedding(inputs["ids"]).mean(dim=1))
        return {"label": logits.squeeze(-1) if logits.shape[-1] == 1 else logits}


def _step(
    clipping: str, feature: OutputFeature, labels: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """The weight change of one noiseless SGD step (lr 1) with a clip no row reaches."""
    model = _Bag(3 if feature.type == "category" else 1)
    before = model.head.weight.detach().clone()
    private = PrivateTraining(
        PrivacyConfig(epsilon=3.0, max_grad_norm=1e6, clipping=clipping),  # type: ignore[arg-type]
        rows=1000,
        batch_size=len(labels),
        accumulation=1,
        seed=0,
    )
    forward, optimizer = private.attach(model, torch.optim.SGD(model.parameters(), lr=1.0), 10)
    optimizer.noise_multiplier = 0.0
    loss_fn = private.loss(total_loss)
    torch.manual_seed(5)
    ids = torch.randint(0, 40, (len(labels), 4))
    loss = loss_fn([feature], forward({"ids": ids}), {"label": labels}, {}, {"label": weights})
    loss.backward()
    optimizer.step()
    private.detach()
    return model.head.weight.detach() - before


def test_class_weights_give_per_sample_and_ghost_clipping_the_same_step() -> None:
    labels = torch.tensor([0, 1, 2, 2, 2, 1])
    weights = torch.tensor([3.0, 1.0, 0.25])
    category = CategoryOutput(name="label")
    per_sample = _step("per_sample", category, labels, weights)
    ghost = _step("ghost", category, labels, weights)
    assert per_sample.abs().sum() > 0
    torch.testing.assert_close(per_sample, ghost, rtol=1e-4, atol=1e-6)
    binary = BinaryOutput(name="label")
    flags = torch.tensor([0.0, 1.0, 1.0, 0.0])
    torch.testing.assert_close(
        _step("per_sample", binary, flags, torch.tensor([0.5, 2.0])),
        _step("ghost", binary, flags, torch.tensor([0.5, 2.0])),
        rtol=1e-4,
        atol=1e-6,
    )


def test_the_summary_says_which_clipping_auto_took() -> None:
    private = PrivateTraining(
        PrivacyConfig(epsilon=3.0), rows=100, batch_size=10, accumulation=1, seed=0
    )
    model = _Bag(3)
    private.attach(model, torch.optim.SGD(model.parameters(), lr=1.0), 10)
    assert private.summary()["clipping"] == "ghost"  # an embedding table: auto takes ghost
    private.detach()
