"""A server's time limit ends a hybrid's joint beam search before its next step: the search of
a long recording (O(frames x tokens), minutes for the 600 s a server takes) otherwise held the
worker long after the request had its 504."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
import torch

from megalith.models.joint_decoding import joint_beam_search
from megalith.runtime.transcription import TranscriptionStopped

VOCAB, FRAMES = 6, 40


def _model(stop: threading.Event, steps: list[int]) -> SimpleNamespace:
    def decode(newest, context, mask, caches, start):
        steps.append(start)
        stop.set()  # the time limit passes while the first step runs
        keys = torch.zeros(len(newest), 1, 2)
        return torch.zeros(len(newest), 1, VOCAB), [(keys, keys)]

    return SimpleNamespace(max_tokens=FRAMES, decode=decode)


def test_a_set_stop_event_ends_the_joint_search_before_its_next_step() -> None:
    stop, steps = threading.Event(), []
    log_probs = torch.randn(FRAMES, VOCAB).log_softmax(-1)
    memory = torch.zeros(FRAMES, 4)
    with pytest.raises(TranscriptionStopped):
        joint_beam_search(_model(stop, steps), memory, log_probs, 2, 0.3, stop)
    assert steps == [0]


def test_without_a_stop_event_the_search_runs_to_its_end() -> None:
    steps: list[int] = []
    model = _model(threading.Event(), steps)  # an event the search is not given
    log_probs = torch.randn(FRAMES, VOCAB).log_softmax(-1)
    ids = joint_beam_search(model, torch.zeros(FRAMES, 4), log_probs, 2, 0.3)
    assert isinstance(ids, list) and len(steps) >= 1


def test_overlapping_joint_searches_restore_the_threads_of_before() -> None:
    """Two requests of a server decoding at once: the first to enter leaving first must not
    leave the process at one thread (each saved and restored the count by itself)."""
    from megalith.models.joint_decoding import one_thread

    before = torch.get_num_threads()
    wanted = 3 if before != 3 else 2
    torch.set_num_threads(wanted)
    try:
        first, second = one_thread(), one_thread()
        first.__enter__()
        second.__enter__()
        assert torch.get_num_threads() == 1
        first.__exit__(None, None, None)  # the first request ends while the second decodes
        assert torch.get_num_threads() == 1
        second.__exit__(None, None, None)
        assert torch.get_num_threads() == wanted
    finally:
        torch.set_num_threads(before)
