"""TensorTable: packing 1-D columns into one matrix changes no value a batch holds."""

from __future__ import annotations

import numpy as np
import torch

from megalith.data.tensors import TensorTable


def make_table() -> TensorTable:
    gen = torch.Generator().manual_seed(0)
    return TensorTable(
        inputs={
            "a": torch.randn(50, generator=gen),
            "flag": torch.randint(0, 2, (50,), generator=gen).float(),
            "color": torch.randint(0, 5, (50,), generator=gen),  # int64: a group of one
            "b": torch.randn(50, generator=gen),
            "tokens": torch.randint(0, 9, (50, 7), generator=gen),
        },
        targets={"y": torch.randint(0, 3, (50,), generator=gen)},
        rows=np.arange(100, 150),
    )


def test_packed_batches_hold_the_same_values_in_the_same_order() -> None:
    plain, packed = make_table(), make_table().pack()
    assert [names for names, _ in packed.packs] == [["a", "flag", "b"]]
    matrix = packed.packs[0][1]
    assert packed.inputs["b"].data_ptr() == matrix[:, 2].data_ptr()  # views, not copies
    index = torch.tensor([7, 3, 49, 0, 3])
    expected, got = plain.select(index), packed.select(index)
    assert list(got.inputs) == list(expected.inputs)
    for name in expected.inputs:
        assert torch.equal(got.inputs[name], expected.inputs[name]), name
        assert got.inputs[name].dtype == expected.inputs[name].dtype
    assert torch.equal(got.targets["y"], expected.targets["y"])
    assert list(got.rows) == [107, 103, 149, 100, 103]
    assert packed.pack() is packed and len(packed.packs) == 1  # packing twice changes nothing
