"""Length bucketing: training batches of rows of similar length, each cut to its own longest row.

Zero-padded inputs (audio clips padded to `duration`, transcripts padded to the longest) cost
compute on the padding. `Bucketing` orders an epoch so that each batch holds rows of similar
length and cuts each batch's padded columns to the longest row in it plus a margin, so most of
the padding is never computed. The idea is the bucket iterators of sequence-to-sequence toolkits
(torchtext's BucketIterator, ESPnet's length-sorted batches, Lhotse's bucketing samplers):

    epoch permutation (seed, epoch) ─► the trailing short batch's rows set aside (random rows)
    ─► pools of `pool` batches, each sorted by length ─► cut into batches ─► batches shuffled

The order is a function of (seed, epoch) and the lengths only, like `epoch_order`, so a resumed
run sees the same batches and DDP's ranks agree on them (each takes its slice of every global
batch, `Distributed.local_part`, and cuts that slice to its own longest row). Sorting inside a
pool of random rows rather than over the whole table keeps batches different from epoch to epoch.

Cutting changes no output as long as the model ignores what lies past a row's length and the
margin covers the model's receptive field past it (a speech recognizer's: megalith.training
.speech).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from megalith.data.tensors import TensorTable

POOL_BATCHES = 8
"""Batches of random rows sorted together: a bigger pool pads less but varies batches less."""


def epoch_order(num_rows: int, seed: int, epoch: int) -> torch.Tensor:
    """The row order of one epoch, a function of (seed, epoch) only: a resumed run sees the same."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(num_rows, generator=generator)


def padded_lengths(values: torch.Tensor) -> torch.Tensor:
    """int64 (N,) on the CPU: each row's length up to its last non-zero entry (0 if none).

    values: (N, S), zero-padded at the end (a waveform; PAD = 0 token ids)."""
    position = torch.arange(1, values.shape[1] + 1, device=values.device)  # (S,)
    return ((values != 0) * position).amax(dim=1).cpu() if len(values) else position[:0].cpu()


def batch_order(
    bucketing: Bucketing | None, rows: int, seed: int, epoch: int, config: Any
) -> torch.Tensor:
    """One epoch's row order: `bucketing`'s for `config.rows_per_batch` (a TrainConfig's), or
    a plain shuffle (`epoch_order`) without it."""
    if bucketing is None:
        return epoch_order(rows, seed, epoch)
    return bucketing.order(seed, epoch, config.rows_per_batch)


@dataclass
class Bucketing:
    """Batches of similar length (`order`) cut to their longest row (`cut`).

    Attributes:
        lengths: int64 (N,) on the CPU: each training row's length (e.g. `padded_lengths`).
        columns: the input names to cut along dim 1 (tensors (N, S, ...), zero-padded at the
            end).
        margin: entries kept past the batch's longest row (the model's look-ahead past a row's
            end; 0 when the model reads nothing past it).
        pool: batches of random rows sorted by length together.
    """

    lengths: torch.Tensor
    columns: tuple[str, ...]
    margin: int = 0
    pool: int = POOL_BATCHES

    def order(self, seed: int, epoch: int, batch_size: int) -> torch.Tensor:
        """int64 (N,) row order of one epoch: consecutive runs of `batch_size` rows are
        batches of similar length, in random order; a short batch (N % batch_size rows,
        drawn at random) comes last, as `shuffled_batches` expects."""
        shuffled = epoch_order(len(self.lengths), seed, epoch)
        whole = len(shuffled) // batch_size * batch_size
        body, rest = shuffled[:whole], shuffled[whole:]
        step = batch_size * self.pool
        parts = []
        for start in range(0, whole, step):
            part = body[start : start + step]
            parts.append(part[torch.argsort(self.lengths[part], stable=True)])
        if not parts:
            return shuffled
        batches = torch.cat(parts).view(-1, batch_size)
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch + 7_919)
        batches = batches[torch.randperm(len(batches), generator=generator)]
        return torch.cat([batches.flatten(), rest])

    def cut(self, batch: TensorTable, index: torch.Tensor) -> TensorTable:
        """`batch` (the rows at `index`) with each of `columns` cut along dim 1 to its longest
        row plus `margin` (never longer than it was). Reads the lengths on the CPU: no
        device sync."""
        if len(index) == 0:
            return batch
        keep = int(self.lengths[index.cpu()].max()) + self.margin
        inputs = dict(batch.inputs)
        for name in self.columns:
            if inputs[name].shape[1] > keep:
                inputs[name] = inputs[name][:, :keep]
        cut = object.__new__(TensorTable)
        cut.inputs, cut.targets, cut.rows, cut.packs = inputs, batch.targets, batch.rows, []
        return cut

    def padding_share(self, order: torch.Tensor, batch_size: int, width: int) -> float:
        """The share of computed entries that are padding, batching `order` by `batch_size`
        and cutting each batch (`width`: the uncut length); for the benchmark and the tests."""
        real = padded = 0
        for start in range(0, len(order), batch_size):
            lengths = self.lengths[order[start : start + batch_size]]
            keep = min(int(lengths.max()) + self.margin, width)
            real += int(lengths.clamp(max=keep).sum())
            padded += keep * len(lengths)
        return 1 - real / max(padded, 1)
