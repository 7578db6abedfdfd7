"""One check for every model family: output shapes, a few steps lower the loss, save -> load gives
identical outputs, and a bf16 autocast step stays finite.

Usage:
    inputs, targets = random_batch(input_specs, output_specs)
    check_model(lambda: build_model(config, input_specs, output_specs), inputs, targets, outputs)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from tempfile import TemporaryDirectory

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from megalith.data.specs import InputSpec, OutputSpec

Batch = dict[str, torch.Tensor]
LossFn = Callable[[Sequence[OutputSpec], Batch, Batch], torch.Tensor]
"""(output specs, model outputs, targets) -> the scalar loss."""


def random_batch(
    inputs: Sequence[InputSpec], outputs: Sequence[OutputSpec], batch_size: int = 16, seed: int = 0
) -> tuple[Batch, Batch]:
    """Random inputs and targets that follow the tensor contract in `megalith.data.specs`."""
    gen = torch.Generator().manual_seed(seed)
    x: Batch = {}
    for spec in inputs:
        if spec.type == "number":
            x[spec.name] = torch.randn(batch_size, generator=gen)
        elif spec.type == "binary":
            x[spec.name] = torch.randint(0, 2, (batch_size,), generator=gen).float()
        elif spec.type == "category":
            x[spec.name] = torch.randint(0, spec.vocab_size, (batch_size,), generator=gen)
        elif spec.type == "text":
            tokens = torch.randint(1, spec.vocab_size, (batch_size, *spec.shape), generator=gen)
            lengths = torch.randint(0, spec.shape[0] + 1, (batch_size, 1), generator=gen)
            positions = torch.arange(spec.shape[0]).unsqueeze(0)
            x[spec.name] = tokens.masked_fill(positions >= lengths, 0)  # right padding
        elif spec.type == "sequence":
            length = spec.shape[0]
            lengths = torch.randint(0, length + 1, (batch_size, 1), generator=gen)
            real = (torch.arange(length).unsqueeze(0) < lengths).float()  # (B, L), right padding
            values = torch.randn(batch_size, length, generator=gen) * real
            x[spec.name] = torch.stack([values, real], dim=-1)  # (B, L, 2)
        elif spec.type == "image":
            shape = (batch_size, *spec.shape)
            x[spec.name] = torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)
        elif spec.type == "audio":
            x[spec.name] = torch.randn(batch_size, *spec.shape, generator=gen) * 0.1  # waveform
        else:
            raise ValueError(f"random_batch: no generator for input type {spec.type}")
    y: Batch = {}
    for out in outputs:
        if out.type == "category":
            y[out.name] = torch.randint(0, out.num_classes, (batch_size,), generator=gen)
        elif out.type == "binary":
            y[out.name] = torch.randint(0, 2, (batch_size,), generator=gen).float()
        else:
            y[out.name] = torch.randn(batch_size, generator=gen)
    return x, y


def contract_loss(outputs: Sequence[OutputSpec], predicted: Batch, targets: Batch) -> torch.Tensor:
    """Sum over outputs of cross-entropy / binary cross-entropy / MSE, computed in fp32."""
    total = torch.zeros(())
    for out in outputs:
        pred, target = predicted[out.name].float(), targets[out.name]
        if out.type == "category":
            total = total + F.cross_entropy(pred, target)
        elif out.type == "binary":
            total = total + F.binary_cross_entropy_with_logits(pred, target)
        else:
            total = total + F.mse_loss(pred, target)
    return total


def check_output_shapes(model: nn.Module, inputs: Batch, outputs: Sequence[OutputSpec]) -> None:
    """Category -> float logits (B, K); binary and number -> float (B,); text -> per-position
    logits (B, T, V)."""
    batch_size = next(iter(inputs.values())).shape[0]
    predicted = model(inputs)
    # a family may add auxiliary outputs "<output>:<what>" (a hybrid recognizer's decoder logits)
    assert {key.split(":")[0] for key in predicted} == {out.name for out in outputs}
    for out in outputs:
        shape = tuple(predicted[out.name].shape)
        if out.type == "text":
            assert len(shape) == 3 and shape[::2] == (batch_size, out.num_classes), (out, shape)
        else:
            expected = (batch_size, out.num_classes) if out.type == "category" else (batch_size,)
            assert shape == expected, (out.name, shape)
        assert predicted[out.name].is_floating_point()


def check_training_lowers_loss(
    model: nn.Module,
    inputs: Batch,
    targets: Batch,
    outputs: Sequence[OutputSpec],
    lr: float = 1e-2,
    steps: int = 30,
    max_ratio: float = 0.7,
    loss_fn: LossFn | None = None,
) -> tuple[float, float]:
    """`steps` Adam steps on one fixed batch bring the loss below `max_ratio` x the first loss."""
    loss_fn = loss_fn or contract_loss
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses: list[float] = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(outputs, model(inputs), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    first, last = losses[0], min(losses[-5:])
    assert last < max_ratio * first, f"loss went from {first:.4f} to {last:.4f}: {losses}"
    return first, last


def check_save_load(make_model: Callable[[], nn.Module], model: nn.Module, inputs: Batch) -> None:
    """Weights through a safetensors file into a fresh model give bit-identical eval outputs."""
    model.eval()
    with torch.no_grad():
        expected = model(inputs)
    fresh = make_model().eval()
    with torch.no_grad():
        before = fresh(inputs)
    assert any(not torch.equal(before[k], expected[k]) for k in expected), "fresh model == trained"
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        save_file(model.state_dict(), str(path))
        fresh.load_state_dict(load_file(str(path)))
    with torch.no_grad():
        loaded = fresh(inputs)
    for name, value in expected.items():
        assert torch.equal(loaded[name], value), f"output {name} differs after save -> load"


def check_bf16_autocast(
    model: nn.Module,
    inputs: Batch,
    targets: Batch,
    outputs: Sequence[OutputSpec],
    loss_fn: LossFn | None = None,
) -> None:
    """A forward + backward under CPU bf16 autocast gives finite outputs, loss and gradients."""
    loss_fn = loss_fn or contract_loss
    model.train()
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        predicted = model(inputs)
        loss = loss_fn(outputs, predicted, targets)
    loss.backward()
    assert all(torch.isfinite(value).all() for value in predicted.values())
    assert torch.isfinite(loss)
    for name, param in model.named_parameters():
        assert param.grad is None or torch.isfinite(param.grad).all(), name


def check_model(
    make_model: Callable[[], nn.Module],
    inputs: Batch,
    targets: Batch,
    outputs: Sequence[OutputSpec],
    lr: float = 1e-2,
    steps: int = 30,
    max_ratio: float = 0.7,
    loss_fn: LossFn | None = None,
) -> nn.Module:
    """Run every check on a model from `make_model` (called twice); return the trained model.
    `loss_fn(outputs, predicted, targets)` replaces `contract_loss` for a family with its own
    (a CTC recognizer)."""
    torch.manual_seed(0)
    model = make_model()
    check_output_shapes(model, inputs, outputs)
    check_training_lowers_loss(model, inputs, targets, outputs, lr, steps, max_ratio, loss_fn)
    check_save_load(make_model, model, inputs)
    check_bf16_autocast(model, inputs, targets, outputs, loss_fn)
    return model
