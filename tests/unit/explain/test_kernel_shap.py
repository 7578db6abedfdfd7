"""Kernel SHAP through Captum: exact on a linear model, and per-unit values spread over a unit."""

from __future__ import annotations

import torch
from torch import nn

from megalith.data.specs import InputSpec
from megalith.explain.mapping import unit_values
from megalith.explain.methods import attribute, shap_samples
from megalith.explain.space import InputSpace


class _Linear(nn.Module):
    """f(a, b) = a @ wa + b @ wb over a (B, 3) and b (B, 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.wa = torch.tensor([1.0, -2.0, 0.5])
        self.wb = torch.tensor([3.0])

    def forward(self, a: torch.Tensor, b: torch.Tensor, *extras: object) -> torch.Tensor:
        return a @ self.wa + b @ self.wb  # (B,)


def _space(values: torch.Tensor, units: torch.Tensor) -> InputSpace:
    spec = InputSpec(name="x", type="number")
    valid = torch.ones(len(values), int(units.max() - units.min()) + 1, dtype=torch.bool)
    return InputSpace(spec, values, torch.zeros_like(values), None, units, valid)


def test_shapley_values_of_a_linear_model_are_weight_times_change() -> None:
    torch.manual_seed(0)
    a, b = torch.randn(4, 3), torch.randn(4, 1)
    spaces = [_space(a, torch.tensor([[0, 1, 2]])), _space(b, torch.tensor([[3]]))]
    found = attribute("shap", _Linear(), spaces, None, internal_batch_size=64)
    expected = [a * torch.tensor([1.0, -2.0, 0.5]), b * 3.0]  # baseline 0
    for got, want in zip(found.values, expected, strict=True):
        torch.testing.assert_close(got.float(), want, atol=1e-3, rtol=1e-3)
    # additivity: the values sum to f(x) - f(baseline)
    total = sum(v.sum(dim=1) for v in found.values)
    torch.testing.assert_close(total, _Linear()(a, b), atol=1e-3, rtol=1e-3)


def test_a_unit_of_several_numbers_gets_one_value_shared_by_its_numbers() -> None:
    torch.manual_seed(1)
    a, b = torch.randn(2, 3), torch.randn(2, 1)
    spaces = [_space(a, torch.tensor([[0, 0, 0]])), _space(b, torch.tensor([[1]]))]
    found = attribute("shap", _Linear(), spaces, None, internal_batch_size=64)
    # every number of the unit holds the unit's whole value; unit_values takes their mean
    assert torch.equal(found.values[0][:, 0], found.values[0][:, 1])
    assert found.gap is not None and float(found.gap.max()) < 1e-3  # the unit counted once
    units = unit_values(spaces, found.values, "shap")
    torch.testing.assert_close(
        units[:, 0].float(), a @ torch.tensor([1.0, -2.0, 0.5]), atol=1e-3, rtol=1e-3
    )


def test_few_units_sample_fewer_coalitions() -> None:
    few = [_space(torch.zeros(1, 3), torch.tensor([[0, 1, 2]]))]
    assert shap_samples(few) == 4 * 2**3
    many = [_space(torch.zeros(1, 64), torch.arange(64).view(1, 64))]
    assert shap_samples(many) == 2 * 64 + 2048


def test_the_additivity_gap_is_measured_and_near_zero_on_a_linear_model() -> None:
    torch.manual_seed(2)
    a, b = torch.randn(5, 3), torch.randn(5, 1)
    spaces = [_space(a, torch.tensor([[0, 1, 2]])), _space(b, torch.tensor([[3]]))]
    found = attribute("shap", _Linear(), spaces, None, internal_batch_size=64)
    assert found.gap is not None and found.gap.shape == (5,) and found.steps is None
    assert float(found.gap.max()) < 1e-3
    # a change given by the caller is what the gap is measured against
    wrong = attribute("shap", _Linear(), spaces, None, internal_batch_size=64, change=a[:, 0] * 0)
    assert wrong.gap is not None and float(wrong.gap.max()) > 1
