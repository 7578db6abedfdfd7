"""Seq2seq: teacher-forced logits, a falling loss, encoder padding ignored, beam search."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from megalith.data.specs import InputSpec, OutputSpec
from megalith.data.tensors import TensorTable
from megalith.data.tokenizers import BOS, EOS, PAD
from megalith.errors import ConfigError
from megalith.models import Seq2SeqConfig, build_model
from megalith.models.seq2seq import Seq2Seq, beam_search, teacher_forcing

SOURCE = InputSpec("src", "text", vocab_size=12, shape=(5,))
TARGET = OutputSpec("tgt", "text", num_classes=12, shape=(7,))
CONFIG = Seq2SeqConfig(layers=1, heads=2, dim=32, dropout=0.0, max_new_tokens=6)


def make_model() -> Seq2Seq:
    torch.manual_seed(0)
    model = build_model(CONFIG, [SOURCE], [TARGET])
    assert isinstance(model, Seq2Seq)
    return model


def reversal_batch(rows: int = 32) -> TensorTable:
    """Copy the source tokens in reverse order: a task a one-layer model learns quickly."""
    gen = torch.Generator().manual_seed(0)
    source = torch.randint(4, 12, (rows, 5), generator=gen)
    framed = torch.cat(
        [torch.full((rows, 1), BOS), source.flip(1), torch.full((rows, 1), EOS)], dim=1
    )
    table = TensorTable({"src": source}, {"tgt": framed}, np.arange(rows))
    return teacher_forcing(table, "tgt")


def train(model: Seq2Seq, table: TensorTable, steps: int) -> list[float]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        logits = model(table.inputs)["tgt"]
        loss = F.cross_entropy(logits.flatten(0, 1), table.targets["tgt"].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_teacher_forcing_shifts_the_target_by_one() -> None:
    table = reversal_batch(2)
    assert table.inputs["tgt"][:, 0].eq(BOS).all()
    torch.testing.assert_close(table.inputs["tgt"][:, 1:], table.targets["tgt"][:, :-1])
    assert table.targets["tgt"][:, -1].eq(EOS).all()


def test_logits_per_target_position_and_a_falling_loss() -> None:
    model, table = make_model(), reversal_batch()
    assert model(table.inputs)["tgt"].shape == (32, 6, 12)
    losses = train(model, table, 150)
    assert losses[-1] < 0.2 * losses[0]


def test_greedy_and_beam_search_write_the_learned_reversal() -> None:
    model, table = make_model(), reversal_batch()
    train(model, table, 250)
    expected = torch.cat([table.inputs["src"].flip(1), torch.full((32, 1), EOS)], dim=1)
    for beams in (1, 3):
        written = beam_search(model, table.inputs["src"], beams)
        assert (written[:, :6] == expected).float().mean() > 0.95


def test_beams_never_score_below_greedy() -> None:
    model = make_model()  # untrained: greedy choices are often not the best sequence
    source = torch.randint(4, 12, (6, 5), generator=torch.Generator().manual_seed(4))

    def log_probability(written: torch.Tensor) -> torch.Tensor:
        prefix = torch.cat([torch.full((6, 1), BOS), written], dim=1)
        memory, mask = model.encode(source)
        logits = model.decode(prefix[:, :-1], memory, mask)[0].log_softmax(-1)
        chosen = logits.gather(-1, written.unsqueeze(-1)).squeeze(-1)
        keep = torch.ones_like(written, dtype=torch.bool)
        for row in range(6):  # up to and including the first EOS
            ends = (written[row] == EOS).nonzero()
            if len(ends):
                keep[row, int(ends[0]) + 1 :] = False
        return (chosen * keep).sum(-1) / keep.sum(-1)

    with torch.no_grad():
        greedy, beam = beam_search(model, source, 1), beam_search(model, source, 5)
        width = max(greedy.shape[1], beam.shape[1])
        greedy = F.pad(greedy, (0, width - greedy.shape[1]), value=PAD)
        beam = F.pad(beam, (0, width - beam.shape[1]), value=PAD)
        assert (log_probability(beam) >= log_probability(greedy) - 1e-4).all()


def test_decoding_with_the_cache_writes_what_full_decoding_writes() -> None:
    model = make_model()  # untrained: many near-ties, so a wrong cache shows quickly
    source = torch.randint(4, 12, (6, 5), generator=torch.Generator().manual_seed(7))
    for beams in (1, 4):
        cached = beam_search(model, source, beams, max_new_tokens=8, use_cache=True)
        full = beam_search(model, source, beams, max_new_tokens=8, use_cache=False)
        assert torch.equal(cached, full), beams


def test_source_padding_changes_nothing() -> None:
    model = make_model().eval()
    source = torch.tensor([[5, 6, 7, 0, 0]])
    target = torch.tensor([[BOS, 7, 6]])
    wider = InputSpec("src", "text", vocab_size=12, shape=(8,))
    torch.manual_seed(0)
    other = Seq2Seq(CONFIG, wider, TARGET).eval()
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        short = model({"src": source, "tgt": target})["tgt"]
        long = other({"src": F.pad(source, (0, 3)), "tgt": target})["tgt"]
    torch.testing.assert_close(short, long, atol=1e-5, rtol=1e-5)


def test_seq2seq_needs_one_text_input_and_output() -> None:
    with pytest.raises(ConfigError, match="one text input and one text output"):
        build_model(CONFIG, [InputSpec("x", "number")], [TARGET])
