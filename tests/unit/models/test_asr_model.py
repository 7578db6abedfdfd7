"""The CTC speech recognizer: loss and greedy decoding on hand-worked examples, real frame lengths,
padding frames as certain blanks, and the shared model check."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from model_check import check_model

from megalith.config import validate_config
from megalith.data.features.logmel import LogMelSettings
from megalith.data.specs import InputSpec, OutputSpec
from megalith.data.tensors import TensorTable
from megalith.data.tokenizers import BOS, EOS, PAD
from megalith.errors import ConfigError, DataError
from megalith.models import ASRConfig, build_model
from megalith.models.asr import (
    BLANK,
    check_ctc_fits,
    clip_frames,
    ctc_frames_needed,
    ctc_loss,
    ctc_targets,
    greedy_ctc,
    subsampled_frames,
)

SETTINGS = LogMelSettings(8000, 128, 80, 16, 0.0, 4000.0, "slaney", 1e-6)
CLIP = InputSpec(
    "audio", "audio", shape=(1600,), mean=(-5.0,) * 16, std=(3.0,) * 16, log_mel=SETTINGS
)
TEXT = OutputSpec("text", "text", num_classes=8, shape=(6,))
A, B = 4, 5  # two ordinary token ids (0-3 are PAD / blank, UNK, BOS, EOS)


def framed(*rows: list[int], width: int = 6) -> torch.Tensor:
    """Targets as the text output encodes them: BOS, ids, EOS, then PAD."""
    return torch.tensor([[BOS, *r, EOS] + [PAD] * (width - len(r) - 2) for r in rows])


def one_hot_logits(path: list[int], vocab: int = 8) -> torch.Tensor:
    """(1, T, V) logits whose argmax per frame follows `path`."""
    return F.one_hot(torch.tensor([path]), vocab).float() * 10


def test_greedy_merges_repeats_and_drops_blanks():
    # a a _ a b b _  ->  a a b : the blank between the two a's keeps them apart
    path = [A, A, BLANK, A, B, B, BLANK]
    assert greedy_ctc(one_hot_logits(path)).tolist() == [[A, A, B]]
    both = torch.cat([one_hot_logits([BLANK] * 7), one_hot_logits(path)])
    assert greedy_ctc(both).tolist() == [[PAD, PAD, PAD], [A, A, B]]  # left-aligned, PAD-padded


def test_ctc_loss_equals_the_sum_over_alignments_by_hand():
    torch.manual_seed(0)
    logits = torch.randn(1, 2, 8)
    p = logits.softmax(-1)[0]  # (T, V)
    # "a" in 2 frames: a_, _a, aa
    by_hand = p[0, A] * p[1, BLANK] + p[0, BLANK] * p[1, A] + p[0, A] * p[1, A]
    loss = ctc_loss(logits, framed([A]))
    assert loss.item() == pytest.approx(-math.log(by_hand.item()), rel=1e-5)
    # "aa" in 3 frames has one alignment, a _ a; per target token: divided by 2
    logits3 = torch.randn(1, 3, 8)
    q = logits3.softmax(-1)[0]
    only = q[0, A] * q[1, BLANK] * q[2, A]
    assert ctc_loss(logits3, framed([A, A])).item() == pytest.approx(-math.log(only) / 2, rel=1e-5)
    # "aa" in 2 frames cannot be aligned: zero_infinity gives 0, not inf
    assert ctc_loss(logits, framed([A, A])).item() == 0.0


def test_targets_drop_bos_eos_and_frames_needed_count_repeats():
    targets = framed([A, A, B], [B], [A, B, A])
    labels, lengths = ctc_targets(targets)
    assert lengths.tolist() == [3, 1, 3]
    assert labels[0, :3].tolist() == [A, A, B]
    assert ctc_frames_needed(targets).tolist() == [4, 1, 3]


def test_padding_frames_as_certain_blanks_equal_ctc_over_the_real_frames():
    torch.manual_seed(1)
    logits = torch.randn(2, 9, 8)
    real = torch.tensor([5, 9])
    padding = torch.full((8,), -1e4)
    padding[BLANK] = 0
    mask = torch.arange(9) < real.unsqueeze(1)
    forced = torch.where(mask.unsqueeze(-1), logits, padding)
    targets = framed([A, B, A], [B, B])
    labels, lengths = ctc_targets(targets)
    reference = (
        F.ctc_loss(logits.log_softmax(-1).transpose(0, 1), labels, real, lengths, reduction="sum")
        / lengths.sum()
    )
    assert ctc_loss(forced, targets).item() == pytest.approx(reference.item(), rel=1e-5)


def test_clip_frames_follow_the_last_non_zero_sample():
    wave = torch.zeros(3, 1600)
    wave[0, :800] = 0.1  # 1 + 800 // 80 = 11 log-mel frames -> ceil(ceil(11 / 2) / 2) = 3
    wave[1] = 0.1  # all 1600: 21 frames -> 6
    assert clip_frames(wave, 80).tolist() == [3, 6, 1]  # a silent clip keeps one frame
    assert subsampled_frames(21) == 6


def test_model_masks_padding_and_its_logits_there_are_blanks():
    torch.manual_seed(0)
    model = build_model(ASRConfig(dim=32, layers=1, heads=2, channels=8), [CLIP], [TEXT]).eval()
    wave = torch.randn(2, 1600) * 0.1
    wave[0, 800:] = 0
    logits = model({"audio": wave})["text"]
    assert logits.shape == (2, 6, 8)
    assert logits[0, 3:].argmax(-1).eq(BLANK).all()  # frames past the clip's end
    # what follows a clip's end cannot change its real frames: attention ignores padding keys
    alone = model({"audio": wave[:1]})["text"]
    assert torch.allclose(alone[0, :3], logits[0, :3], atol=1e-5)


@pytest.mark.slow  # 30 training steps of a small Transformer
def test_asr_passes_the_shared_model_check():
    gen = torch.Generator().manual_seed(0)
    inputs = {"audio": torch.randn(8, 1600, generator=gen) * 0.1}
    ids = torch.randint(A, 8, (8, 3), generator=gen)
    targets = {"text": framed(*ids.tolist())}

    def loss(outputs, predicted, targets):
        return ctc_loss(predicted["text"], targets["text"])

    config = ASRConfig(dim=32, layers=1, heads=2, channels=8, dropout=0.0)
    check_model(lambda: build_model(config, [CLIP], [TEXT]), inputs, targets, [TEXT], loss_fn=loss)


def test_builder_refuses_other_inputs_and_outputs():
    with pytest.raises(ConfigError, match="one audio input and writes one text output"):
        build_model(ASRConfig(), [CLIP], [OutputSpec("digit", "category", num_classes=10)])


def test_transcripts_longer_than_their_clip_are_refused_naming_the_rows():
    wave = torch.zeros(3, 1600)
    wave[:, :160] = 0.1  # 3 log-mel frames -> 1 encoder frame each
    table = TensorTable(
        inputs={"audio": wave},
        targets={"text": framed([A], [A, B], [B])},
        rows=np.array([10, 11, 12]),
    )
    with pytest.raises(DataError, match=r"data.csv: column 'text', row 12: .*needs 2 CTC frames"):
        check_ctc_fits(table, CLIP, "text", "data.csv")


@pytest.mark.parametrize(
    ("inputs", "outputs", "field"),
    [
        ([{"name": "x", "type": "number"}], [{"name": "t", "type": "text"}], "inputs"),
        ([{"name": "a", "type": "audio"}, {"name": "b", "type": "audio"}], [], "inputs"),
        ([{"name": "a", "type": "audio"}], [{"name": "d", "type": "category"}], "outputs"),
        (
            [{"name": "a", "type": "audio"}],
            [{"name": "t", "type": "text"}, {"name": "u", "type": "text"}],
            "outputs",
        ),
    ],
)
def test_the_config_refuses_anything_but_one_audio_input_and_one_text_output(
    inputs, outputs, field
):
    config = {
        "data": {"source": "t.csv"},
        "inputs": inputs,
        "outputs": outputs or [{"name": "t", "type": "text"}],
        "model": {"arch": "asr"},
    }
    with pytest.raises(ConfigError, match=rf"{field}: model.arch asr (reads|writes) exactly one"):
        validate_config(config, origin="asr.yaml")


def test_tune_watches_the_speech_metrics():
    from megalith.tuning.study import _checked_metric

    config = validate_config(
        {
            "data": {"source": "t.csv"},
            "inputs": [{"name": "a", "type": "audio"}],
            "outputs": [{"name": "t", "type": "text", "tokenizer": "char"}],
            "model": {"arch": "asr"},
        }
    )
    assert _checked_metric("val/wer", config) == "val/wer"
    with pytest.raises(ConfigError, match="choose from val/loss, val/wer, val/cer"):
        _checked_metric("val/perplexity", config)
