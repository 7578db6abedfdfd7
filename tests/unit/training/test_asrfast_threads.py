"""train.threads: PyTorch's CPU threads while training, restored afterwards."""

import pydantic
import pytest
import torch

from megalith.device import threads
from megalith.training.loop import TrainConfig


def test_threads_hold_inside_the_block_and_are_restored_after_it() -> None:
    before = torch.get_num_threads()
    with threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), threads(1):
        raise RuntimeError("a failed epoch")
    assert torch.get_num_threads() == before
    with threads(None):
        assert torch.get_num_threads() == before


def test_the_key_takes_a_positive_count_or_null() -> None:
    assert TrainConfig().threads is None
    assert TrainConfig(threads=1).threads == 1
    with pytest.raises(pydantic.ValidationError, match="threads"):
        TrainConfig(threads=0)
