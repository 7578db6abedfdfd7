"""Word and character error rates against hand-worked edit distances and against jiwer itself,
per utterance for the report, and the per-speaker WER (errors over words, not a mean of rates)."""

import jiwer
import pytest

from megalith.evaluate.speech import error_rates, utterance_errors
from megalith.evaluate.speech_report import Utterance, _by_speaker

PAIRS = [  # (reference, hypothesis, word errors, character errors)
    ("four one seven", "four one seven", 0, 0),
    ("four one seven", "four seven", 1, 4),  # one deletion: "one " (4 characters)
    ("one two", "one two three", 1, 6),  # one insertion: " three"
    ("nine nine", "nine five", 1, 2),  # one substitution: n -> f and n -> v in "nine"
    ("zero", "", 1, 4),  # nothing written: every word deleted
]


def test_error_rates_equal_hand_worked_edit_distances():
    references = [r for r, _, _, _ in PAIRS]
    hypotheses = [h for _, h, _, _ in PAIRS]
    words = sum(len(r.split()) for r in references)  # 3 + 3 + 2 + 2 + 1 = 11
    characters = sum(len(r) for r in references)
    scores = error_rates(hypotheses, references)
    assert scores["wer"] == pytest.approx(sum(p[2] for p in PAIRS) / words)  # 4 / 11
    assert scores["cer"] == pytest.approx(sum(p[3] for p in PAIRS) / characters)


def test_error_rates_equal_jiwer_and_surrounding_spaces_do_not_count():
    references = ["two  three four", "eight", "six six six"]
    hypotheses = [" two three fore ", "eight eight", "six  six"]
    scores = error_rates(hypotheses, references)
    assert scores["wer"] == pytest.approx(jiwer.wer(references, hypotheses))
    assert scores["cer"] == pytest.approx(jiwer.cer(references, hypotheses))
    assert scores["wer"] == pytest.approx(3 / 7)  # fore, + eight, - six
    assert error_rates([], []) == {}
    with pytest.raises(ValueError, match="2 hypotheses for 1 references"):
        error_rates(["a", "b"], ["a"])


def test_utterance_errors_and_speakers_weigh_by_words():
    rows = utterance_errors(["four seven", "one two three", ""], ["four one seven", "one two", ""])
    assert rows == [
        {"errors": 1, "words": 3, "wer": pytest.approx(1 / 3)},
        {"errors": 1, "words": 2, "wer": 0.5},
        {"errors": 0, "words": 0, "wer": 0.0},
    ]
    scored = [
        Utterance("a b c d", "a b c d", 0, 4, 0.0, "s1"),
        Utterance("a", "b", 1, 1, 1.0, "s1"),
        Utterance("a b", "a", 1, 2, 0.5, "s2"),
    ]
    # s1: 1 error in 5 words (0.2, not the mean of 0 and 1); s2: 1 in 2; worst first
    assert _by_speaker(scored) == [("s2", 1, 2, 0.5), ("s1", 2, 5, 0.2)]
