"""Long recordings through a fixed-length speech model: overlapping windows, stitched frames.

A recognizer reads clips of a fixed `window` of samples (its `duration`). A longer waveform is
cut into windows that overlap by `overlap` samples, each window's frame scores are computed, and
the frames are stitched back onto one time line: where two windows overlap, the earlier one keeps
the first half of the overlap and the later one the second half, so every frame of the
recording comes from exactly one window, and from the part of it that saw context on both sides.
This is the usual chunked long-form recognition (e.g. the "chunking" of CTC pipelines in
Hugging Face transformers, whose stride drops each chunk's edges).

Windows start on multiples of `frame` (samples per output frame, the hop length times the
model's subsampling), so frame j of the window starting at sample s is frame s // frame + j of
the recording. Torch-free: the bundle runtime uses it too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _check(window: int, overlap: int, frame: int) -> int:
    """The stride between window starts (samples), a multiple of `frame`."""
    if window < 1 or frame < 1:
        raise ValueError(f"window ({window}) and frame ({frame}) must be >= 1 sample")
    if not 0 <= overlap < window:
        raise ValueError(f"overlap must be in [0, window = {window}) samples, got {overlap}")
    stride = (window - overlap) // frame * frame
    if stride < frame:
        raise ValueError(
            f"window {window} - overlap {overlap} samples leaves less than one frame "
            f"({frame} samples) between windows; lower the overlap"
        )
    return stride


def window_starts(samples: int, window: int, overlap: int, frame: int) -> list[int]:
    """Start sample of each window covering `samples`; the last window ends at or past the end.

    Raises:
        ValueError: a window, overlap or frame that leaves no progress between windows.
    """
    stride = _check(window, overlap, frame)
    starts = [0]
    while starts[-1] + window < samples:
        starts.append(starts[-1] + stride)
    return starts


def cut_windows(
    waveform: np.ndarray, window: int, overlap: int, frame: int
) -> tuple[np.ndarray, list[int]]:
    """Windows (N, window) float32 of a waveform (samples,), the last zero-padded, and their
    start samples (see `window_starts`). A waveform no longer than `window` is one window."""
    if waveform.ndim != 1:
        raise ValueError(f"waveform must be one channel (samples,), got shape {waveform.shape}")
    starts = window_starts(len(waveform), window, overlap, frame)
    windows = np.zeros((len(starts), window), dtype=np.float32)
    for row, start in enumerate(starts):
        piece = waveform[start : start + window]
        windows[row, : len(piece)] = piece
    return windows, starts


def stitch_frames(
    frame_scores: Sequence[np.ndarray], starts: Sequence[int], frame: int
) -> np.ndarray:
    """One (T, V) array of frame scores from each window's (T_i, V), without repeats or gaps.

    Args:
        frame_scores: per window, its frames' scores (log-probabilities or logits).
        starts: each window's start sample, multiples of `frame` (from `cut_windows`).
        frame: samples per frame.
    Returns:
        (T, V), T = the last window's first frame + its frame count: window i gives the frames
        from the middle of its overlap with window i-1 to the middle of its overlap with i+1.
    Raises:
        ValueError: counts that differ, a start off the frame grid, or windows that leave a gap.
    """
    if len(frame_scores) != len(starts) or not starts:
        raise ValueError(f"{len(frame_scores)} windows of scores for {len(starts)} starts")
    if any(start % frame for start in starts):
        raise ValueError(f"window starts {list(starts)} are not multiples of {frame} samples")
    first = [start // frame for start in starts]  # each window's first frame on the time line
    ends = [f + len(scores) for f, scores in zip(first, frame_scores, strict=True)]
    cuts = [0]
    for i in range(len(starts) - 1):
        if ends[i] < first[i + 1]:
            raise ValueError(f"window {i} ends at frame {ends[i]}, before window {i + 1} starts")
        cuts.append((first[i + 1] + ends[i]) // 2)  # the middle of the overlap
    cuts.append(ends[-1])
    pieces = [
        scores[cuts[i] - first[i] : cuts[i + 1] - first[i]] for i, scores in enumerate(frame_scores)
    ]
    return np.concatenate(pieces, axis=0)
