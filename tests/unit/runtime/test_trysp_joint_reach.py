"""A hybrid's joint search stops at the decoder's positions (model.max_tokens, 8 clips'
transcripts): a long recording whose transcript reaches them was cut there silently (a stitched
1,400-frame recording spelling 700 tokens came back with 648). The recording is now decoded
with the CTC head alone, with a warning; shorter transcripts keep the joint search's."""

from __future__ import annotations

import numpy as np
import pytest

from megalith.transcribe.transcriber import joint_or_ctc


def _frames(count: int, vocab: int = 4, width: int = 3) -> np.ndarray:
    return np.arange(count * (vocab + width), dtype=np.float32).reshape(count, vocab + width)


def test_a_transcript_cut_at_the_decoders_reach_is_decoded_with_ctc_alone() -> None:
    seen = []

    def ctc(logits: np.ndarray) -> list[int]:
        seen.append(logits.shape)
        return [1] * 15

    with pytest.warns(UserWarning, match="reached the 10 tokens .* CTC head alone"):
        ids = joint_or_ctc(lambda frames: [2] * 10, ctc, 10, 4, _frames(30))
    assert ids == [1] * 15 and seen == [(30, 4)]  # CTC reads the logits, not the memory


def test_shorter_transcripts_and_short_recordings_keep_the_joint_search() -> None:
    def ctc(logits: np.ndarray) -> list[int]:
        raise AssertionError("not needed")

    assert joint_or_ctc(lambda frames: [2] * 9, ctc, 10, 4, _frames(30)) == [2] * 9
    # as many frames as positions: CTC's own bound, not a cut
    assert joint_or_ctc(lambda frames: [2] * 10, ctc, 10, 4, _frames(10)) == [2] * 10
