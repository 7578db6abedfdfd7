"""megalith.runtime.windows: long waveforms cut into overlapping windows and their frames stitched
back so that every frame is kept exactly once, and a long utterance decodes without dropped or
duplicated words even when each window's edges are wrong."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from megalith.runtime.ctc import greedy_ctc
from megalith.runtime.windows import cut_windows, stitch_frames, window_starts

BLANK = 0
LETTERS = " abcdefghijklmnopqrstuvwxyz"  # id i + 1 is LETTERS[i]
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.mark.parametrize(
    ("samples", "window", "overlap", "frame"),
    [(1000, 1000, 200, 40), (5000, 1000, 200, 40), (5001, 1000, 0, 40), (12345, 800, 390, 64)],
)
def test_every_frame_of_the_recording_is_kept_exactly_once(
    samples: int, window: int, overlap: int, frame: int
) -> None:
    starts = window_starts(samples, window, overlap, frame)
    assert starts[0] == 0 and starts[-1] + window >= samples
    assert all(start % frame == 0 for start in starts)
    assert all(b - a <= window - overlap for a, b in itertools.pairwise(starts))
    # each window's "scores" are the recording frame numbers it covers (one more than
    # window // frame, as a centred spectrogram has)
    per_window = window // frame + 1
    scores = [np.arange(s // frame, s // frame + per_window)[:, None] for s in starts]
    stitched = stitch_frames(scores, starts, frame)[:, 0]
    np.testing.assert_array_equal(stitched, np.arange(len(stitched)))
    assert len(stitched) >= samples // frame


def test_a_short_waveform_is_one_zero_padded_window() -> None:
    windows, starts = cut_windows(np.ones(300, np.float32), window=1000, overlap=200, frame=40)
    assert starts == [0] and windows.shape == (1, 1000)
    assert windows[0, :300].sum() == 300 and not windows[0, 300:].any()


def spoken(text: str, frame: int) -> np.ndarray:
    """A stand-in waveform: each character lasts 3 frames (its id as the sample value) and is
    followed by a silent frame, which the fake model below hears as blank."""
    ids = [LETTERS.index(c) + 1 for c in text]
    return np.concatenate([np.repeat([i, i, i, 0], frame) for i in ids]).astype(np.float32)


def fake_model(
    window: np.ndarray, frame: int, edges: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """(window // frame + 1, V) log-probs: each frame hears its first sample, except the first
    and last `edges` frames, which lack context and hear a random letter."""
    frames = window.shape[0] // frame + 1
    heard = np.append(window[::frame], 0)[:frames].astype(int)
    left, right = edges
    heard[:left] = rng.integers(1, len(LETTERS) + 1, size=left)
    heard[frames - right :] = rng.integers(1, len(LETTERS) + 1, size=right)
    scores = np.full((frames, len(LETTERS) + 1), np.log(0.01 / len(LETTERS)))
    scores[np.arange(frames), heard] = np.log(0.99)
    return scores.astype(np.float32)


def transcribe(text: str, overlap_frames: int, edge: int) -> str:
    """`text` spoken, cut into 100-frame windows, each heard by the fake model with `edge` wrong
    frames on the sides that are inside the recording, stitched and greedily decoded."""
    rng = np.random.default_rng(1)
    frame = 160
    windows, starts = cut_windows(spoken(text, frame), 100 * frame, overlap_frames * frame, frame)
    assert len(windows) > 5
    last = len(windows) - 1
    scores = [
        fake_model(w, frame, (edge * (i > 0), edge * (i < last)), rng)
        for i, w in enumerate(windows)
    ]
    stitched = stitch_frames(scores, starts, frame)
    return "".join(LETTERS[i - 1] for i in greedy_ctc(stitched, BLANK))


def test_a_long_utterance_stitches_without_dropped_or_duplicated_words() -> None:
    text = " ".join(np.random.default_rng(0).choice(WORDS, size=80))
    assert transcribe(text, overlap_frames=30, edge=10).split() == text.split()
    assert transcribe(text, overlap_frames=30, edge=0) == text


def test_windows_without_overlap_keep_their_wrong_edges() -> None:
    # the control for the test above: with no overlap there is nothing to drop
    text = " ".join(np.random.default_rng(0).choice(WORDS, size=80))
    assert transcribe(text, overlap_frames=0, edge=10).split() != text.split()
    assert transcribe(text, overlap_frames=0, edge=0) == text


def test_bad_windows_are_refused() -> None:
    with pytest.raises(ValueError, match="overlap"):
        window_starts(100, window=50, overlap=50, frame=10)
    with pytest.raises(ValueError, match="less than one frame"):
        window_starts(100, window=50, overlap=45, frame=10)
    with pytest.raises(ValueError, match="one channel"):
        cut_windows(np.zeros((2, 10), np.float32), 10, 0, 1)
    with pytest.raises(ValueError, match="multiples"):
        stitch_frames([np.zeros((3, 2))], [5], frame=4)
    with pytest.raises(ValueError, match="before window 1"):
        stitch_frames([np.zeros((2, 2)), np.zeros((2, 2))], [0, 40], frame=4)
