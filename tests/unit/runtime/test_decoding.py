"""megalith.runtime.decoding: the numpy beam search writes what megalith's torch beam search
writes, step for step (no ONNX here: both search the same table of logits)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from megalith.data.tokenizers import EOS, PAD
from megalith.models.seq2seq import beam_search
from megalith.runtime.decoding import Decoding, log_softmax
from megalith.runtime.decoding import beam_search as numpy_beam_search

VOCAB, STEPS = 9, 7


class TableModel(nn.Module):
    """A stand-in for megalith's Seq2Seq: the next-token logits of a row come from a fixed
    random table, by the row's first source id, the position and the last token written."""

    def __init__(self, seed: int, end_weight: float) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.table = torch.randn(16, STEPS + 1, VOCAB, VOCAB, generator=generator) * 2.5
        self.table[..., EOS] += end_weight
        self.max_new_tokens = STEPS
        self.target_positions = nn.Module()
        self.target_positions.max_length = STEPS + 1

    def encode(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        memory = source[:, :1, None].float()  # (B, 1, 1): the row's first id
        return memory, torch.ones(len(source), 1, 1, 1, dtype=torch.bool)

    def decode(
        self,
        target: torch.Tensor,
        memory: torch.Tensor,
        mask: torch.Tensor,
        caches: Any = None,
        start: int = 0,
    ) -> tuple[torch.Tensor, list[Any]]:
        row = memory[:, 0, 0].long()
        positions = [self.table[row, start + t, target[:, t]] for t in range(target.shape[1])]
        return torch.stack(positions, dim=1), []  # (B, T, V); no keys / values to cache


def numpy_search(model: TableModel, source: torch.Tensor, beams: int) -> np.ndarray:
    table = model.table.numpy()

    def step(tokens: np.ndarray, memory: np.ndarray, mask: np.ndarray) -> np.ndarray:
        row = memory[:, 0, 0].astype(np.int64)
        return table[row, tokens.shape[1] - 1, tokens[:, -1]]  # (B, V)

    memory, mask = model.encode(source)
    decoding = Decoding(beam_size=beams, max_new_tokens=STEPS)
    return numpy_beam_search(step, memory.numpy(), mask[:, 0, 0, :].numpy(), decoding)


@pytest.mark.parametrize("beams", [1, 2, 3, 5])
@pytest.mark.parametrize(("seed", "end_weight"), [(0, 0.0), (1, 1.5), (2, 3.0)])
def test_numpy_beam_search_writes_what_the_torch_one_writes(
    beams: int, seed: int, end_weight: float
) -> None:
    model = TableModel(seed, end_weight)
    source = torch.arange(16)[:, None].repeat(1, 3)  # one row per table entry
    expected = beam_search(model, source, beams).numpy()  # type: ignore[arg-type]
    found = numpy_search(model, source, beams)
    assert found.tolist() == expected.tolist()
    lengths = ((found != PAD) & (found != EOS)).sum(axis=1)
    assert len(set(lengths.tolist())) >= 2, "every row as long: length handling not compared"


def test_beams_and_length_normalisation_change_the_choice() -> None:
    """Otherwise the comparison above would not tell beams, greedy and normalisation apart."""
    model = TableModel(1, 1.5)
    source = torch.arange(16)[:, None]
    greedy, beams = numpy_search(model, source, 1), numpy_search(model, source, 5)
    assert greedy.tolist() != beams.tolist()


def test_log_softmax_matches_torch() -> None:
    logits = np.random.default_rng(0).normal(0, 5, (3, 11)).astype(np.float32)
    expected = torch.from_numpy(logits).log_softmax(-1).numpy()
    np.testing.assert_allclose(log_softmax(logits), expected, atol=1e-6)
