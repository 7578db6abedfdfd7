"""Ghost clipping gives the clipped, summed gradient that per-sample clipping gives."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from megalith.data.features import BinaryOutput, CategoryOutput, NumberOutput
from megalith.training.ghost_clipping import row_losses
from megalith.training.losses import total_loss
from megalith.training.privacy import PrivacyConfig, PrivateTraining, ghost_clipping_for


class _Bag(nn.Module):
    """An embedding bag and a linear head: the layers ghost clipping computes norms for."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embedding = nn.Embedding(50, 6, padding_idx=0)
        self.head = nn.Linear(6, 3)

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"label": self.head(self.embedding(inputs["ids"]).mean(dim=1))}


def _step(clipping: str, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """One optimizer step of SGD (lr 1) over `batches` as virtual steps, without noise:
    returns the weight change, i.e. minus the clipped mean gradient."""
    model = _Bag()
    before = model.head.weight.detach().clone()
    private = PrivateTraining(
        PrivacyConfig(epsilon=3.0, max_grad_norm=0.05, clipping=clipping),  # type: ignore[arg-type]
        rows=1000,
        batch_size=4,
        accumulation=len(batches),
        seed=0,
    )
    forward, optimizer = private.attach(model, torch.optim.SGD(model.parameters(), lr=1.0), 10)
    optimizer.noise_multiplier = 0.0
    loss_fn = private.loss(total_loss)
    features = [CategoryOutput(name="label")]
    for ids, labels in batches:
        loss = loss_fn(features, forward({"ids": ids}), {"label": labels}, {}, {})
        loss.backward()
    optimizer.step()
    private.detach()
    return model.head.weight.detach() - before


def test_ghost_and_per_sample_clipping_take_the_same_step_over_virtual_steps() -> None:
    torch.manual_seed(1)
    batches = [
        (torch.randint(1, 50, (n, 5)), torch.randint(0, 3, (n,))) for n in (4, 0, 3)
    ]  # the middle Poisson batch drew no rows
    per_sample, ghost = _step("per_sample", batches), _step("ghost", batches)
    assert per_sample.abs().sum() > 0
    torch.testing.assert_close(ghost, per_sample, rtol=1e-4, atol=1e-6)


def test_row_losses_average_to_the_training_loss() -> None:
    torch.manual_seed(2)
    features = [
        CategoryOutput(name="c", label_smoothing=0.1),
        BinaryOutput(name="b", weight=0.5),
        NumberOutput(name="n"),
    ]
    outputs = {"c": torch.randn(6, 4), "b": torch.randn(6), "n": torch.randn(6)}
    targets = {"c": torch.randint(0, 4, (6,)), "b": torch.randint(0, 2, (6,)).float()}
    targets["n"] = torch.randn(6)
    rows = row_losses(features, outputs, targets)
    assert rows.shape == (6,)
    torch.testing.assert_close(rows.mean(), total_loss(features, outputs, targets))


def test_auto_takes_ghost_clipping_for_linear_and_embedding_models() -> None:
    assert ghost_clipping_for("auto", _Bag())
    assert ghost_clipping_for("auto", nn.Sequential(nn.Linear(3, 2)))
    assert not ghost_clipping_for("auto", nn.Sequential(nn.Conv1d(3, 8, 5), nn.Linear(8, 2)))
    assert not ghost_clipping_for("per_sample", nn.Sequential(nn.Linear(3, 2)))
    assert not ghost_clipping_for("per_sample", _Bag())


@pytest.mark.parametrize("clipping", ["per_sample", "ghost"])
def test_every_row_is_clipped_to_max_grad_norm(clipping: str) -> None:
    torch.manual_seed(3)
    one_row = [(torch.randint(1, 50, (1, 5)), torch.randint(0, 3, (1,)))]
    change = _step(clipping, one_row)  # one row: its clipped gradient / expected rows (4)
    assert 0 < float(change.norm()) <= 0.05 / 4 + 1e-6


def test_embedding_norms_equal_each_rows_own_gradient_norm_without_padding() -> None:
    from megalith.training.ghost_clipping import embedding_norms

    torch.manual_seed(4)
    layer = nn.Embedding(30, 5, padding_idx=0)
    ids = torch.randint(0, 30, (6, 9))
    ids[:, 6:] = 0  # padded ends
    ids[0, :3] = 7  # one id repeated within a row: its gradients add before the norm
    grads = torch.randn(6, 9, 5)
    norms = embedding_norms(layer, [ids], grads)[layer.weight]
    for row in range(6):
        layer.zero_grad()
        (layer(ids[row : row + 1]) * grads[row : row + 1]).sum().backward()
        assert layer.weight.grad is not None
        assert float(norms[row]) == pytest.approx(float(layer.weight.grad.norm()), rel=1e-5)
