"""DP-SGD pieces: noise for a target epsilon, accountant, clipping, Poisson batches, layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from opacus.accountants import PRVAccountant, RDPAccountant
from torch import nn

from megalith.data.tensors import TensorTable
from megalith.errors import ConfigError
from megalith.models.private_layers import make_private_safe
from megalith.training.privacy import PrivacyConfig, PrivateTraining, default_delta
from megalith.training.private_checks import check_private_training
from megalith.training.rdp import rdp_epsilon


def _private(epsilon: float = 3.0, rows: int = 1000, accountant: str = "prv") -> PrivateTraining:
    config = PrivacyConfig(epsilon=epsilon, accountant=accountant)  # type: ignore[arg-type]
    return PrivateTraining(config, rows=rows, batch_size=50, accumulation=1, seed=0)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


@pytest.mark.parametrize("accountant", [pytest.param("prv", marks=pytest.mark.slow), "rdp"])
def test_epsilon_spent_matches_opacus_for_the_steps_and_sample_rate(accountant: str) -> None:
    private = _private(accountant=accountant)
    model = _model()
    private.attach(model, torch.optim.SGD(model.parameters(), lr=0.1), total_steps=40)
    for _ in range(40):
        private.account_step()
    reference = PRVAccountant() if accountant == "prv" else RDPAccountant()
    for _ in range(40):  # Opacus's own accountant, told only sigma and q = 50 / 1000
        reference.step(noise_multiplier=private.noise_multiplier, sample_rate=0.05)
    expected = reference.get_epsilon(delta=1e-4)
    assert private.delta == pytest.approx(1e-4)  # 1 / (10 N)
    assert private.epsilon() == pytest.approx(expected, rel=1e-6)
    assert 2.9 <= private.epsilon() <= 3.0 + 1e-6  # the noise was chosen for the target


def test_a_smaller_budget_needs_more_noise() -> None:
    multipliers = []
    for epsilon in (1.0, 8.0):
        private, model = _private(epsilon, accountant="rdp"), _model()
        private.attach(model, torch.optim.SGD(model.parameters(), lr=0.1), total_steps=200)
        multipliers.append(private.noise_multiplier or 0.0)
    assert multipliers[0] > 2 * multipliers[1] > 0


def test_clipping_bounds_every_per_sample_gradient() -> None:
    private = PrivateTraining(  # per-sample: auto would take ghost for these Linear layers
        PrivacyConfig(epsilon=3.0, max_grad_norm=0.5, clipping="per_sample"),
        rows=100,
        batch_size=1,
        accumulation=1,
        seed=0,
    )
    model = _model()
    forward, optimizer = private.attach(model, torch.optim.SGD(model.parameters(), lr=0.1), 10)
    optimizer.noise_multiplier = 0.0  # the clipped gradient alone
    x = torch.randn(8, 4) * 100
    y = torch.randint(0, 2, (8,))
    raw_norms, clipped_norms = [], []
    for row in range(8):  # one row per step: the step's gradient is that row's, clipped
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(forward(x[row : row + 1]), y[row : row + 1])
        loss.backward()
        raw = torch.cat([p.grad_sample.flatten() for p in model.parameters()])
        raw_norms.append(float(raw.norm()))
        optimizer.pre_step()
        clipped_norms.append(
            float(torch.cat([p.grad.flatten() for p in model.parameters()]).norm())
        )
    assert max(raw_norms) > 5  # some raw gradients were far above the bound
    for raw_norm, clipped in zip(raw_norms, clipped_norms, strict=True):
        assert clipped == pytest.approx(min(raw_norm, 0.5), rel=1e-4, abs=1e-6)


def _table(rows: int) -> TensorTable:
    return TensorTable(
        inputs={"x": torch.arange(rows, dtype=torch.float32)},
        targets={"y": torch.arange(rows)},
        rows=np.arange(rows),
    )


def test_poisson_batches_depend_on_seed_and_epoch_and_resume_mid_epoch() -> None:
    private = PrivateTraining(PrivacyConfig(), rows=400, batch_size=20, accumulation=2, seed=3)
    assert private.sample_rate == pytest.approx(0.1)
    assert private.steps_per_epoch == 10 and private.batches_per_epoch == 20
    cpu = torch.device("cpu")
    first = [b.inputs["x"] for b in private.batches(_table(400), 0, 0, cpu)]
    again = [b.inputs["x"] for b in private.batches(_table(400), 0, 0, cpu)]
    other = [b.inputs["x"] for b in private.batches(_table(400), 1, 0, cpu)]
    later = [b.inputs["x"] for b in private.batches(_table(400), 0, 6, cpu)]
    assert len(first) == 20 and all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=False))
    assert all(torch.equal(a, b) for a, b in zip(first[6:], later, strict=True))
    sizes = [len(first[i]) + len(first[i + 1]) for i in range(0, 20, 2)]
    assert 20 < np.mean(sizes) < 60  # q * N = 40 rows per step, in expectation


def test_delta_default_is_ten_times_below_one_over_n() -> None:
    assert default_delta(5000) == pytest.approx(2e-5)
    assert _private(rows=5000).delta < 1 / 5000
    explicit = PrivateTraining(
        PrivacyConfig(delta=1e-6), rows=5000, batch_size=8, accumulation=1, seed=0
    )
    assert explicit.delta == 1e-6


def test_batch_norm_is_replaced_with_a_notice() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    notices: list[str] = []
    fixed = make_private_safe(model, notices.append)
    assert isinstance(fixed[1], nn.GroupNorm)
    assert notices == ["train.privacy: layer 1 (BatchNorm1d) replaced by GroupNorm"]
    assert make_private_safe(_model(), notices.append) is not None and len(notices) == 1


def test_lstm_becomes_opacus_dplstm() -> None:
    fixed = make_private_safe(nn.Sequential(nn.LSTM(4, 8, batch_first=True)))
    assert type(fixed[0]).__name__ == "DPLSTM"


class _Scaled(nn.Module):
    """A trainable layer with a buffer: Opacus has no per-sample gradient for it."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(4))
        self.register_buffer("running", torch.zeros(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight + self.running


def test_an_unsupported_layer_is_refused_by_name() -> None:
    model = nn.Sequential(nn.Linear(4, 4), _Scaled())
    with pytest.raises(ConfigError, match=r"layer 1 \(_Scaled\)"):
        make_private_safe(model)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"clip_grad_norm": 1.0}, "train.clip_grad_norm"),
        ({"precision": "fp16"}, "train.precision"),
        ({"compile_model": True}, "train.compile"),
        ({"output_types": ["text"]}, "outputs"),
        ({"distilled": True}, "teacher"),
        ({"sharded": True}, "train.strategy: fsdp"),
    ],
)
def test_what_private_training_does_not_cover_is_refused(kwargs: dict, key: str) -> None:
    settings = {
        "clip_grad_norm": None,
        "precision": "auto",
        "compile_model": "auto",
        "output_types": ["category"],
        "distilled": False,
        **kwargs,
    }
    with pytest.raises(ConfigError, match=key):
        check_private_training(PrivacyConfig(), **settings)  # type: ignore[arg-type]
    check_private_training(None, **settings)  # type: ignore[arg-type]  # not private: fine


def test_mixup_is_refused_with_privacy_and_other_augmentation_is_not() -> None:
    from megalith.config import validate_config
    from megalith.training.distributed import Distributed
    from megalith.training.private_run import prepare_privacy

    def config(augment: object) -> object:
        return validate_config(
            {
                "data": {"source": "builtin:digits"},
                "inputs": [{"name": "image", "type": "image", "augment": augment}],
                "outputs": [{"name": "label", "type": "category"}],
                "model": {"arch": "cnn"},
                "train": {"privacy": {"epsilon": 3}, "batch_size": 50},
            }
        )

    one = Distributed()
    with pytest.raises(ConfigError, match=r"inputs\.image\.augment: mixup"):
        prepare_privacy(config("photos"), 1000, one, False)  # type: ignore[arg-type]
    assert prepare_privacy(config("shapes"), 1000, one, False) is not None  # type: ignore[arg-type]


def test_cached_rdp_epsilon_equals_opacus_at_every_step_count() -> None:
    reference = RDPAccountant()
    for steps in (1, 7, 30):  # the history Opacus keeps: (sigma, q, steps), merged when equal
        for _ in range(steps):
            reference.step(noise_multiplier=1.1, sample_rate=0.02)
        assert rdp_epsilon(reference.history, 1e-5) == pytest.approx(
            reference.get_epsilon(delta=1e-5), rel=1e-12
        )
    reference.step(noise_multiplier=0.8, sample_rate=0.05)  # a second entry composes with it
    assert rdp_epsilon(reference.history, 1e-5) == pytest.approx(
        reference.get_epsilon(delta=1e-5), rel=1e-12
    )
