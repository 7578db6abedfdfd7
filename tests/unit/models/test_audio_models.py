"""Audio inputs in the CNN / ResNet / MLP families: the log-mel front end and its augmentation."""

from __future__ import annotations

import pytest
import torch
from model_check import check_model, random_batch

from megalith.data.features.audio import AudioAugment
from megalith.data.features.logmel import LogMelSettings
from megalith.data.specs import InputSpec, OutputSpec
from megalith.models import CNNConfig, MLPConfig, ResNetConfig, build_model
from megalith.models.logmel import AudioFrontEnd, spec_augment

SETTINGS = LogMelSettings(8000, 128, 80, 16, 0.0, 4000.0, "slaney", 1e-6)
CLIP = InputSpec(
    "clip", "audio", shape=(1600,), mean=(-5.0,) * 16, std=(3.0,) * 16, log_mel=SETTINGS
)
LABEL = [OutputSpec("label", "category", num_classes=4)]


@pytest.mark.slow  # 30 training steps of a conv net per family
@pytest.mark.parametrize(
    "config",
    [CNNConfig(channels=[8, 16], hidden=[16]), ResNetConfig(channels=[8, 16], blocks=[1, 1])],
    ids=["cnn", "resnet"],
)
def test_audio_backbones_pass_the_shared_model_check(config):
    x, y = random_batch([CLIP], LABEL, batch_size=8)
    check_model(lambda: build_model(config, [CLIP], LABEL), x, y, LABEL)


@pytest.mark.slow  # 30 training steps over 8 spectrograms
def test_audio_mixed_with_a_table_and_augmented_in_an_mlp():
    clip = InputSpec(**{**vars(CLIP), "augment": AudioAugment(noise_snr_db=30)})
    inputs = [clip, InputSpec("age", "number"), InputSpec("mic", "category", vocab_size=3)]
    outputs = [*LABEL, OutputSpec("loudness", "number")]
    x, y = random_batch(inputs, outputs, batch_size=8)
    check_model(lambda: build_model(MLPConfig(hidden=[16]), inputs, outputs), x, y, outputs)


def test_the_spectrogram_reaches_the_backbone_as_one_channel_image():
    model = build_model(CNNConfig(channels=[4]), [CLIP], LABEL)
    front_end = model.encoders[0].front_end
    wave = torch.randn(3, 1600) * 0.1
    assert front_end(wave).shape == (3, 1, 16, 1 + 1600 // 80)


def test_augmentation_runs_in_training_only_and_follows_the_seed():
    front_end = AudioFrontEnd(SETTINGS, CLIP.mean, CLIP.std, AudioAugment(noise_snr_db=20))
    wave = torch.randn(4, 1600) * 0.1
    front_end.eval()
    assert torch.equal(front_end(wave), front_end(wave))
    clean = front_end(wave)
    front_end.train()
    torch.manual_seed(7)
    first = front_end(wave)
    torch.manual_seed(7)
    again = front_end(wave)
    assert torch.equal(first, again)  # the run's seed fixes every draw (exact resume)
    assert not torch.allclose(first, clean) and first.shape == clean.shape
    assert not torch.equal(front_end(wave), first)  # the next batch draws anew


def test_spec_augment_masks_whole_bands_of_bins_and_frames():
    torch.manual_seed(0)
    x = torch.ones(64, 16, 21)
    masked = spec_augment(
        x, AudioAugment(freq_masks=1, freq_mask_width=4, time_masks=1, time_mask_width=5)
    )
    assert masked.shape == x.shape
    zero_bins = (masked == 0).all(dim=2)  # (B, M): a frequency mask spans every frame
    zero_frames = (masked == 0).all(dim=1)  # (B, T)
    assert zero_bins.sum(dim=1).max() <= 4 and zero_frames.sum(dim=1).max() <= 5
    assert zero_bins.any() and zero_frames.any()
    for row in range(64):  # one contiguous band each
        for flags in (zero_bins[row], zero_frames[row]):
            where = flags.nonzero().flatten()
            if len(where):
                assert where[-1] - where[0] + 1 == len(where)
    untouched = ~zero_bins.unsqueeze(2) & ~zero_frames.unsqueeze(1)
    assert masked[untouched].eq(1).all()
    off = AudioAugment(freq_masks=0, time_masks=0)
    assert torch.equal(spec_augment(x, off), x)
