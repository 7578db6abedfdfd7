"""Speed perturbation (Ko et al. 2015): a clip played at speed s lasts 1/s as long and its
frequencies are s times higher; the draws come from PyTorch's seeded generator (so a resumed run
draws the same); the recognizer reads real lengths after it; evaluation never perturbs."""

import numpy as np
import pydantic
import pytest
import torch

from megalith.bucketing import padded_lengths
from megalith.data.features.audio import AudioAugment
from megalith.data.features.logmel import LogMelSettings
from megalith.data.specs import InputSpec, OutputSpec
from megalith.models import ASRConfig, build_model
from megalith.models.asr import clip_frames
from megalith.models.logmel import perturb_speed

RATE = 8000
QUIET = {"gain_db": 0.0, "freq_masks": 0, "time_masks": 0}
SETTINGS = LogMelSettings(RATE, 128, 80, 16, 0.0, 4000.0, "slaney", 1e-6)
TEXT = OutputSpec("text", "text", num_classes=8, shape=(6,))


def sine(hertz: float, samples: int, width: int) -> torch.Tensor:
    wave = torch.zeros(1, width)
    wave[0, :samples] = torch.sin(2 * torch.pi * hertz * torch.arange(samples) / RATE)
    return wave


def peak_hertz(wave: torch.Tensor) -> float:
    spectrum = np.abs(np.fft.rfft(wave[0].numpy()))
    return float(np.argmax(spectrum)) * RATE / wave.shape[1]


@pytest.mark.parametrize("speed", [0.9, 1.1])
def test_a_clip_at_speed_s_lasts_1_over_s_and_sounds_s_times_higher(speed: float) -> None:
    wave = sine(500.0, 4000, 6000)
    played = perturb_speed(wave, [speed], width=6000)
    assert played.shape == (1, 6000)
    assert abs(int(padded_lengths(played)[0]) - 4000 / speed) <= 2
    assert abs(peak_hertz(played) - 500.0 * speed) < 5.0
    assert torch.equal(perturb_speed(wave, [1.0], width=6000), wave)


def test_a_slowed_clip_grows_up_to_the_models_width_and_is_cut_there() -> None:
    wave = sine(300.0, 1000, 1000)  # a batch cut to its longest clip (megalith.bucketing)
    assert perturb_speed(wave, [0.8], width=4000).shape == (1, 1250)
    assert perturb_speed(wave, [0.8], width=1100).shape == (1, 1100)


def test_draws_follow_the_seeded_generator_so_a_resumed_run_draws_the_same() -> None:
    wave = torch.cat([sine(400.0, 3000, 4000)] * 8)
    torch.manual_seed(5)
    first = perturb_speed(wave, [0.9, 1.0, 1.1], width=4000)
    state = torch.get_rng_state()  # what a checkpoint saves
    after = perturb_speed(wave, [0.9, 1.0, 1.1], width=4000)
    torch.set_rng_state(state)
    assert torch.equal(perturb_speed(wave, [0.9, 1.0, 1.1], width=4000), after)
    torch.manual_seed(5)
    assert torch.equal(perturb_speed(wave, [0.9, 1.0, 1.1], width=4000), first)
    lengths = set(padded_lengths(first).tolist())
    assert len(lengths) > 1  # clips of one batch get different speeds


def test_the_recognizer_reads_lengths_after_it_and_never_perturbs_at_evaluation() -> None:
    augment = AudioAugment(speeds=[0.8], **QUIET)
    shape = {"shape": (4000,), "mean": (-5.0,) * 16, "std": (3.0,) * 16, "log_mel": SETTINGS}
    spec = InputSpec("audio", "audio", augment=augment, **shape)
    plain_spec = InputSpec("audio", "audio", **shape)
    config = ASRConfig(dim=32, layers=1, heads=2, channels=8, dropout=0.0)
    torch.manual_seed(0)
    model = build_model(config, [spec], [TEXT])
    plain = build_model(config, [plain_spec], [TEXT])
    plain.load_state_dict(model.state_dict())
    wave = sine(400.0, 2400, 4000)
    model.eval(), plain.eval()
    with torch.no_grad():
        assert torch.equal(model({"audio": wave})["text"], plain({"audio": wave})["text"])
        model.train()
        slowed = model({"audio": wave})["text"]
    real = slowed.argmax(-1)[0] != 0  # frames that are not certain blanks
    frames = int(clip_frames(perturb_speed(wave, [0.8], 4000), 80)[0])
    assert frames > int(clip_frames(wave, 80)[0])
    assert (slowed[0, :frames] != 0).any() and real[frames:].sum() == 0


def test_speeds_out_of_range_are_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="speeds"):
        AudioAugment(speeds=[3.0])
