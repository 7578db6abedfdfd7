"""Variable-length audio with a frames mask, and the CRNN (conv + bidirectional GRU) backbone."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from audio_specs import CLIP
from model_check import check_model, random_batch

from megalith.data.specs import InputSpec, OutputSpec
from megalith.errors import ConfigError
from megalith.models import CNNConfig, CRNNConfig, ResNetConfig, build_model
from megalith.models.audio_frames import clip_frames
from megalith.models.crnn import reverse_in_place

LABEL = [OutputSpec("label", "category", num_classes=4)]
CONFIGS = [CNNConfig(channels=[8, 16], hidden=[16]), CRNNConfig(channels=[8, 16], gru_hidden=8)]


@pytest.mark.slow  # 30 training steps of a conv net (and a GRU) per family
@pytest.mark.parametrize("config", CONFIGS, ids=["masked-cnn", "crnn"])
def test_variable_length_backbones_pass_the_shared_model_check(config):
    x, y = random_batch([CLIP], LABEL, batch_size=8)
    lengths = torch.tensor([2400, 2000, 1500, 900, 600, 400, 200, 2400])
    x["clip"] = x["clip"] * (torch.arange(2400)[None, :] < lengths[:, None])  # padded clips
    check_model(lambda: build_model(config, [CLIP], LABEL), x, y, LABEL)


def test_the_crnn_reads_an_image_with_its_width_as_time():
    image = InputSpec("photo", "image", shape=(1, 12, 20), mean=(0.5,), std=(0.2,))
    x, _ = random_batch([image], LABEL, batch_size=3)
    model = build_model(CONFIGS[1], [image], LABEL).eval()
    assert model(x)["label"].shape == (3, 4)
    assert model.encoders[0].backbone.stages.out_height == 3  # 12 mel rows halved twice


@pytest.mark.parametrize("config", CONFIGS, ids=["masked-cnn", "crnn"])
def test_a_clip_predicts_the_same_alone_or_batched_with_shorter_or_longer_clips(config):
    torch.manual_seed(0)
    model = build_model(config, [CLIP], LABEL).eval()
    generator = torch.Generator().manual_seed(1)
    clip = torch.randn(1234, generator=generator) * 0.1
    with torch.no_grad():
        alone = model({"clip": clip[None, :]})["label"]  # (1, 4), no padding at all
        longer = torch.zeros(3, 2400)  # the fitted length, as the preprocessor pads
        longer[0, :1234], longer[1, :2399], longer[2, :300] = clip, 0.2, 1.0
        shorter = torch.zeros(2, 1300)
        shorter[0, :1234], shorter[1, :50] = clip, 0.3
        with_longer = model({"clip": longer})["label"]
        with_shorter = model({"clip": shorter})["label"]
    torch.testing.assert_close(with_longer[:1], alone, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(with_shorter[:1], alone, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(with_longer[1], alone[0], atol=1e-3)  # other clips differ


def test_a_clip_ends_at_its_last_non_zero_sample():
    wave = torch.zeros(3, 800)
    wave[0, :800], wave[1, :161], wave[2, 5] = 0.1, 0.1, -0.2
    wave[1, 100] = 0.0  # a zero inside a clip is kept
    assert clip_frames(wave, 80).tolist() == [11, 3, 1]


def test_reversing_in_place_twice_is_the_identity():
    x = torch.arange(12.0).view(2, 6, 1)
    frames = torch.tensor([4, 6])
    once = reverse_in_place(x, frames)
    assert once[0, :, 0].tolist() == [3.0, 2.0, 1.0, 0.0, 4.0, 5.0]
    assert torch.equal(reverse_in_place(once, frames), x)


def test_variable_length_needs_a_backbone_that_masks():
    with pytest.raises(ConfigError, match=r"variable_length.*cnn or crnn"):
        build_model(ResNetConfig(channels=[8], blocks=[1]), [CLIP], LABEL)
    with pytest.raises(ConfigError, match=r"odd model\.kernel_size"):
        build_model(CNNConfig(channels=[8], kernel_size=2), [CLIP], LABEL)


def test_the_crnn_becomes_private_safe_with_opacus_dp_grus():
    from megalith.models.private_layers import make_private_safe

    model = make_private_safe(build_model(CONFIGS[1], [CLIP], LABEL))
    kinds = {type(module).__name__ for module in model.modules()}
    assert "DPGRU" in kinds and "GRU" not in kinds and "BatchNorm2d" not in kinds
    x, _ = random_batch([CLIP], LABEL, batch_size=4)
    assert model(x)["label"].shape == (4, 4)


@pytest.mark.slow  # one ONNX export (~10 s)
def test_the_crnn_exports_to_onnx_with_the_same_outputs(tmp_path):
    import onnxruntime

    from megalith.export.graph import export_graph

    torch.manual_seed(0)
    model = build_model(CONFIGS[1], [CLIP], LABEL).eval()
    waves = np.zeros((3, 2400), dtype=np.float32)
    waves[0, :700], waves[1], waves[2, :1999] = 0.1, 0.05, -0.1
    waves += np.random.default_rng(0).normal(0, 0.05, waves.shape).astype(np.float32) * (waves != 0)
    # as megalith.export.graph_input_specs gives it: a crnn's graph keeps the fitted length (the
    # exporter cannot decompose its GRU over a symbolic number of frames)
    fitted = dataclasses.replace(CLIP, variable_length=False)
    export_graph(model, [fitted], [waves], ["clip"], ["label"], tmp_path / "model.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    (got,) = session.run(None, {session.get_inputs()[0].name: waves[::-1].copy()})
    with torch.no_grad():
        expected = model({"clip": torch.from_numpy(waves[::-1].copy())})["label"].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_resnet_on_fixed_length_audio_is_unchanged():
    fixed = dataclasses.replace(CLIP, variable_length=False)
    model = build_model(ResNetConfig(channels=[8], blocks=[1]), [fixed], LABEL)
    assert not model.encoders[0].takes_frames
