"""Length bucketing: an epoch's order is a seeded permutation of similar-length batches, a batch
cut to its longest clip gives the recognizer's logits of the padded batch, and cutting skips most
of the padding."""

import torch

from megalith.batching import count_batches, shuffled_batches
from megalith.bucketing import Bucketing, epoch_order, padded_lengths
from megalith.data.features.audio import AudioAugment
from megalith.data.features.logmel import LogMelSettings
from megalith.data.specs import InputSpec, OutputSpec
from megalith.data.tensors import TensorTable
from megalith.models import ASRConfig, build_model
from megalith.models.asr import BLANK
from megalith.training.speech import speech_margin

SETTINGS = LogMelSettings(8000, 128, 80, 16, 0.0, 4000.0, "slaney", 1e-6)
CLIP = InputSpec(
    "audio", "audio", shape=(4000,), mean=(-5.0,) * 16, std=(3.0,) * 16, log_mel=SETTINGS
)
TEXT = OutputSpec("text", "text", num_classes=8, shape=(6,))


def skewed_lengths(rows: int) -> torch.Tensor:
    """Lengths between 100 and 4000 samples, most of them short (as clips padded to the longest)."""
    generator = torch.Generator().manual_seed(1)
    return (100 + 3900 * torch.rand(rows, generator=generator) ** 3).long()


def test_an_epochs_order_is_a_seeded_permutation_with_the_short_batch_last():
    bucketing = Bucketing(skewed_lengths(203), ("audio",))
    order = bucketing.order(seed=3, epoch=1, batch_size=16)
    assert sorted(order.tolist()) == list(range(203))
    assert torch.equal(order, bucketing.order(3, 1, 16))  # a resumed run sees the same order
    assert not torch.equal(order, bucketing.order(3, 2, 16))
    assert not torch.equal(order, bucketing.order(4, 1, 16))
    # the 11 rows of the short batch are the plain shuffle's last 11: random rows, last
    assert set(order[-11:].tolist()) == set(epoch_order(203, 3, 1)[-11:].tolist())


def test_bucketed_batches_hold_similar_lengths_and_pad_far_less():
    lengths = skewed_lengths(512)
    bucketing = Bucketing(lengths, ("audio",))
    plain = bucketing.padding_share(epoch_order(512, 0, 0), 16, 4000)
    bucketed = bucketing.padding_share(bucketing.order(0, 0, 16), 16, 4000)
    assert plain > 0.6 and bucketed < plain / 3
    # each pool of 8 batches is sorted: a batch's lengths do not overlap another's of its pool
    batches = lengths[bucketing.order(0, 0, 16)].view(-1, 16)
    spread = (batches.max(1).values - batches.min(1).values).float().mean()
    assert spread < 0.25 * (lengths.max() - lengths.min())


def test_cutting_keeps_the_longest_row_plus_the_margin():
    wave = torch.zeros(4, 100)
    for row, length in enumerate([10, 40, 25, 0]):
        wave[row, :length] = 1.0
    lengths = padded_lengths(wave)
    assert lengths.tolist() == [10, 40, 25, 0]
    table = TensorTable({"audio": wave}, {"text": torch.ones(4, 3)}, rows=torch.arange(4).numpy())
    index = torch.tensor([0, 2])
    cut = Bucketing(lengths, ("audio",), margin=5).cut(table.select(index), index)
    assert cut.inputs["audio"].shape == (2, 30) and cut.targets["text"].shape == (2, 3)
    whole = Bucketing(lengths, ("audio",), margin=500).cut(table.select(index), index)
    assert whole.inputs["audio"].shape == (2, 100)  # never longer than it was


def test_a_cut_batch_gives_the_padded_batchs_logits_row_by_row():
    torch.manual_seed(0)
    model = build_model(ASRConfig(dim=32, layers=2, heads=2, channels=8), [CLIP], [TEXT]).eval()
    wave = torch.zeros(5, 4000)
    for row, length in enumerate([900, 1233, 1500, 1017, 640]):
        wave[row, :length] = torch.randn(length) * 0.1
    bucketing = Bucketing(padded_lengths(wave), ("audio",), speech_margin(CLIP))
    table = TensorTable({"audio": wave}, {}, rows=torch.arange(5).numpy())
    index = torch.arange(5)
    cut = bucketing.cut(table.select(index), index).inputs["audio"]
    assert cut.shape[1] == 1500 + 640  # the longest clip and 8 hops: not the 4,000 samples
    with torch.no_grad():
        padded_logits = model({"audio": wave})["text"]
        cut_logits = model({"audio": cut})["text"]
    frames = cut_logits.shape[1]
    assert torch.allclose(cut_logits, padded_logits[:, :frames], atol=1e-4)
    assert padded_logits[:, frames:].argmax(-1).eq(BLANK).all()  # the rest: certain blanks


def test_the_margin_covers_a_random_time_shift():
    shifted = InputSpec(**{**CLIP.__dict__, "augment": AudioAugment(shift=0.1)})
    assert speech_margin(shifted) == speech_margin(CLIP) + 800  # 0.1 s at 8 kHz


def test_training_batches_are_cut_and_follow_the_order():
    wave = torch.zeros(6, 50)
    for row in range(6):
        wave[row, : 5 * (row + 1)] = 1.0
    table = TensorTable({"audio": wave}, {}, rows=torch.arange(6).numpy())
    bucketing = Bucketing(padded_lengths(wave), ("audio",))
    order = bucketing.order(0, 0, 2)
    batches = list(shuffled_batches(table, 2, order, torch.device("cpu"), bucketing=bucketing))
    assert len(batches) == count_batches(6, 2) == 3
    for batch in batches:
        assert batch.inputs["audio"][:, -1].ne(0).any()  # cut right after the longest row
    assert sorted(int(r) for b in batches for r in b.rows) == list(range(6))
