"""clipping: auto takes ghost clipping for the models it is faster on, and there it takes the
same noiseless step as per-sample clipping; epsilon does not depend on the clipping mode."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from model_check import random_batch
from torch import nn

from megalith.data.features import CategoryOutput
from megalith.data.specs import InputSpec, OutputSpec
from megalith.models import CNNConfig, MLPConfig, build_model
from megalith.models.private_layers import make_private_safe
from megalith.training.clipping_choice import ghost_weight_share
from megalith.training.losses import total_loss
from megalith.training.privacy import PrivacyConfig, PrivateTraining, ghost_clipping_for

NUMBERS = [InputSpec(f"f{i}", "number") for i in range(20)]
DIGITS = [InputSpec("image", "image", shape=(1, 8, 8), mean=(0.3,), std=(0.35,))]
LABEL = [OutputSpec("label", "category", num_classes=4)]


def _text(kind: str, vocab: int = 2000) -> list[InputSpec]:
    from megalith.data.features.encoding import SequenceEncoderConfig

    encoder = SequenceEncoderConfig(kind=kind, hidden=8, heads=2, dropout=0.0)  # type: ignore[arg-type]
    return [InputSpec("t", "text", vocab_size=vocab, shape=(7,), embedding_dim=8, encoder=encoder)]


MODELS: dict[str, tuple[Callable[[], nn.Module], list[InputSpec]]] = {
    "mlp": (lambda: build_model(MLPConfig(hidden=[64, 64]), NUMBERS, LABEL), NUMBERS),
    "cnn": (lambda: build_model(CNNConfig(channels=[8, 16], hidden=[32]), DIGITS, LABEL), DIGITS),
    "text bag": (lambda: build_model(MLPConfig(hidden=[]), _text("bag"), LABEL), _text("bag")),
    "text lstm": (lambda: build_model(MLPConfig(hidden=[]), _text("lstm"), LABEL), _text("lstm")),
    "text transformer": (
        lambda: build_model(MLPConfig(hidden=[]), _text("transformer"), LABEL),
        _text("transformer"),
    ),
}


def _private(clipping: str) -> PrivateTraining:
    config = PrivacyConfig(
        epsilon=3.0,
        max_grad_norm=0.5,
        accountant="rdp",
        clipping=clipping,  # type: ignore[arg-type]
    )
    return PrivateTraining(config, rows=1000, batch_size=16, accumulation=1, seed=0)


def _clipped_sum(name: str, clipping: str) -> tuple[dict[str, torch.Tensor], bool]:
    """One noiseless SGD step (lr 1) from the same weights on the same rows: each weight's
    change is minus the clipped per-row gradients summed, over the expected rows (16)."""
    build, inputs = MODELS[name]
    torch.manual_seed(0)
    model = make_private_safe(build())
    before = {key: value.detach().clone() for key, value in model.named_parameters()}
    private = _private(clipping)
    forward, optimizer = private.attach(model, torch.optim.SGD(model.parameters(), lr=1.0), 10)
    optimizer.noise_multiplier = 0.0
    x, y = random_batch(inputs, LABEL, batch_size=16, seed=1)
    if "t" in x:  # ghost clipping's embedding norm leaves padding out (docs/privacy.md)
        x["t"] = torch.randint(1, 2000, x["t"].shape, generator=torch.Generator().manual_seed(2))
    features = [CategoryOutput(name="label")]
    private.loss(total_loss)(features, forward(x), y, {}, {}).backward()
    optimizer.step()
    private.detach()
    after = dict(model.named_parameters())
    return {key: after[key].detach() - value for key, value in before.items()}, private.ghost


@pytest.mark.parametrize("name", list(MODELS))
def test_ghost_clipping_takes_the_per_sample_step_for_every_model_auto_may_send_to_it(
    name: str,
) -> None:
    per_sample, ghost_used = _clipped_sum(name, "per_sample")
    ghost, ghost_taken = _clipped_sum(name, "ghost")
    assert not ghost_used and ghost_taken
    moved = sum(float(change.abs().sum()) for change in per_sample.values())
    assert moved > 0
    for key, change in per_sample.items():
        torch.testing.assert_close(ghost[key], change, rtol=0, atol=1e-5, msg=key)


def test_auto_takes_ghost_clipping_where_most_weights_are_linear_or_embedding() -> None:
    # measured (benchmarks/privacy_clipping.py): ghost faster for MLPs and text bags, not for
    # the digits CNN, whose convolutions still need per-row gradients under ghost clipping
    expected = {"mlp": True, "cnn": False, "text bag": True, "text lstm": True}
    expected["text transformer"] = True
    for name, (build, _) in MODELS.items():
        model = make_private_safe(build())
        assert ghost_clipping_for("auto", model) == expected[name], name
    narrow = build_model(MLPConfig(hidden=[64]), NUMBERS, LABEL)
    assert ghost_weight_share(narrow) == 1.0 and ghost_clipping_for("auto", narrow)
    # a small vocabulary: DPLSTM's weights (RNNLinear, per-row gradients) are the most
    small_lstm = make_private_safe(build_model(MLPConfig(hidden=[]), _text("lstm", 60), LABEL))
    assert 0.1 < ghost_weight_share(small_lstm) < 0.5
    assert not ghost_clipping_for("auto", small_lstm)
    assert not ghost_clipping_for("per_sample", narrow)
    assert ghost_clipping_for("ghost", make_private_safe(MODELS["cnn"][0]()))


def test_epsilon_and_noise_do_not_depend_on_the_clipping_mode() -> None:
    spent = {}
    for clipping in ("per_sample", "ghost"):
        model = build_model(MLPConfig(hidden=[8]), NUMBERS, LABEL)
        private = _private(clipping)
        private.attach(model, torch.optim.SGD(model.parameters(), lr=0.1), 30)
        for _ in range(30):
            private.account_step()
        spent[clipping] = (private.noise_multiplier, private.epsilon(), private.summary())
        private.detach()
    (noise, epsilon, summary), (ghost_noise, ghost_epsilon, ghost_summary) = spent.values()
    assert noise == ghost_noise and epsilon == ghost_epsilon
    assert 0 < epsilon <= 3.0
    assert (summary["clipping"], ghost_summary["clipping"]) == ("per_sample", "ghost")


def test_auto_takes_the_same_clipping_inside_opacus_ddp_wrapper(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from megalith.training.private_ddp import private_ddp

    # one process, no process group: the wrapper's broadcast of rank 0's weights is a no-op
    monkeypatch.setattr(torch.distributed, "broadcast", lambda tensor, src: None)
    for name, (build, _) in MODELS.items():
        model = make_private_safe(build())
        wrapped = private_ddp(model)
        assert ghost_clipping_for("auto", wrapped) == ghost_clipping_for("auto", model), name
