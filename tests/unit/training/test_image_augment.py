"""Batch image augmentation: deterministic per (seed, epoch, batch), mixup, and its errors."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from megalith.data.features import CategoryOutput, ImageInput, NumberInput, TextOutput
from megalith.data.specs import InputSpec
from megalith.errors import ConfigError
from megalith.training.augment import augment_batch, build_augmenter, mixed_loss
from megalith.training.losses import total_loss

SPEC = InputSpec(name="image", type="image", shape=(1, 16, 16), mean=(0.5,), std=(0.2,))
OUTPUTS = [CategoryOutput(name="label")]


def _batch(rows: int = 8) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {"image": torch.randint(0, 256, (rows, 1, 16, 16), generator=gen, dtype=torch.uint8)}


def _augmenter(seed: int = 0, **settings: object):  # type: ignore[no-untyped-def]
    inputs = [ImageInput(name="image", augment=settings or "shapes")]
    augmenter = build_augmenter(inputs, OUTPUTS, [SPEC], seed)
    assert augmenter is not None
    return augmenter


def test_same_seed_epoch_and_batch_give_the_same_images_and_leave_global_rng_alone() -> None:
    batch = _batch()
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    first, _ = _augmenter()(batch, epoch=1, batch=4)
    assert torch.equal(torch.rand(3), before)  # the loop's own random state did not move
    again, _ = _augmenter()(batch, epoch=1, batch=4)
    other_batch, _ = _augmenter()(batch, epoch=1, batch=5)
    other_seed, _ = _augmenter(seed=1)(batch, epoch=1, batch=4)
    assert first["image"].dtype == torch.float32 and first["image"].shape == (8, 1, 16, 16)
    assert torch.equal(first["image"], again["image"])
    assert not torch.equal(first["image"], other_batch["image"])
    assert not torch.equal(first["image"], other_seed["image"])
    assert not torch.allclose(first["image"], batch["image"].float())  # it did transform
    assert float(first["image"].min()) >= 0 and float(first["image"].max()) <= 255


def test_without_augment_settings_there_is_no_augmenter_and_batches_pass_unchanged() -> None:
    inputs = [ImageInput(name="image"), ImageInput(name="other", augment="none")]
    assert build_augmenter(inputs, OUTPUTS, [SPEC], 0) is None
    batch = _batch()
    assert augment_batch(None, batch, 0, 0) == (batch, None)


def test_mixup_blends_rows_and_their_losses_with_one_weight() -> None:
    batch = _batch(rows=6)
    mixed, mix = _augmenter(mixup=0.4)(batch, epoch=0, batch=0)
    assert mix is not None and 0 <= mix.lam <= 1
    raw = batch["image"].float()
    expected = mix.lam * raw + (1 - mix.lam) * raw[mix.partner]
    assert torch.allclose(mixed["image"], expected)
    logits = {"label": torch.randn(6, 3)}
    targets = {"label": torch.tensor([0, 1, 2, 0, 1, 2])}
    own = total_loss(OUTPUTS, logits, targets)
    other = total_loss(OUTPUTS, logits, {"label": targets["label"][mix.partner]})
    blended = mixed_loss(mix, total_loss, OUTPUTS, logits, targets)
    assert torch.allclose(blended, mix.lam * own + (1 - mix.lam) * other)


def test_mixup_with_a_table_column_or_a_text_output_is_refused() -> None:
    image = ImageInput(name="image", augment={"mixup": 0.2})
    with pytest.raises(ConfigError, match=r"inputs\.image\.augment\.mixup: .*'size' is not an"):
        build_augmenter([image, NumberInput(name="size")], OUTPUTS, [SPEC], 0)
    with pytest.raises(ConfigError, match="output 'caption' is text"):
        build_augmenter([image], [TextOutput(name="caption")], [SPEC], 0)


def test_missing_kornia_is_a_config_error_naming_the_input(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def without_kornia(name: str, *args: object) -> object:
        return None if name == "kornia" else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", without_kornia)
    with pytest.raises(ConfigError, match=r"inputs\.image\.augment: .*megalith\[vision\]"):
        _augmenter()
