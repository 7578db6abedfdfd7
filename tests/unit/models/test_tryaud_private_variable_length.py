"""Variable-length audio under train.privacy: GroupNorm (BatchNorm made private-safe) counts the
padding, so a batch keeps the fitted length and a clip predicts the same alone, batched with
shorter clips, or padded to the fitted length as the exported graph and the runtime do."""

from __future__ import annotations

import pytest
import torch
from audio_specs import CLIP

from megalith.data.specs import OutputSpec
from megalith.models import CNNConfig, CRNNConfig, build_model

pytest.importorskip("opacus")

LABEL = [OutputSpec("label", "category", num_classes=4)]


@pytest.mark.parametrize(
    "config",
    [CNNConfig(channels=[8, 16], hidden=[16]), CRNNConfig(channels=[8, 16], gru_hidden=8)],
    ids=["masked-cnn", "crnn"],
)
def test_a_private_clip_predicts_the_same_alone_batched_or_padded_to_the_fitted_length(
    config, monkeypatch
):
    import megalith.models.audio_frames as frames
    from megalith.models.private_layers import make_private_safe

    torch.manual_seed(0)
    model = make_private_safe(build_model(config, [CLIP], LABEL)).eval()
    assert any(isinstance(module, torch.nn.GroupNorm) for module in model.modules())
    clip = torch.randn(1234, generator=torch.Generator().manual_seed(1)) * 0.1
    padded = torch.zeros(1, 2400)  # as the preprocessor pads, and the ONNX graph takes it
    padded[0, :1234] = clip
    shorter = torch.zeros(2, 1234)
    shorter[0], shorter[1, :50] = clip, 0.3
    with torch.no_grad():
        alone = model({"clip": clip[None, :]})["label"]  # no padding at all
        fitted = model({"clip": padded})["label"]
        batched = model({"clip": shorter})["label"][:1]
        monkeypatch.setattr(frames.torch.jit, "is_tracing", lambda: True)  # as export traces
        traced = model({"clip": padded})["label"]
    torch.testing.assert_close(fitted, traced, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(alone, traced, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(batched, traced, atol=1e-5, rtol=1e-4)
