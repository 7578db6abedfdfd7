"""megalith.runtime.ctc: greedy and prefix beam search against hand-worked examples and against
brute-force enumeration of every alignment; language-model fusion and the length bonus."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from megalith.runtime.ctc import greedy_ctc, prefix_beam_search

BLANK, A, B, C = 0, 1, 2, 3


def frames(*rows: dict[int, float], vocab: int = 4) -> np.ndarray:
    """(T, V) log-probabilities from per-frame {label: probability}; the rest share what is left."""
    table = np.zeros((len(rows), vocab))
    for t, row in enumerate(rows):
        rest = [v for v in range(vocab) if v not in row]
        table[t, list(row)] = list(row.values())
        if rest:
            table[t, rest] = (1.0 - sum(row.values())) / len(rest)
    return np.log(np.clip(table, 1e-12, None)).astype(np.float32)


def brute_force(log_probs: np.ndarray, blank: int) -> dict[tuple[int, ...], float]:
    """P(labelling | x) for every labelling: the sum over the V**T alignments collapsing to it."""
    probabilities = np.exp(log_probs.astype(np.float64))
    sums: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(log_probs.shape[1]), repeat=len(log_probs)):
        merged = [label for i, label in enumerate(path) if i == 0 or label != path[i - 1]]
        labels = tuple(label for label in merged if label != blank)
        p = float(np.prod(probabilities[np.arange(len(path)), path]))
        sums[labels] = sums.get(labels, 0.0) + p
    return sums


def test_greedy_merges_repeats_and_drops_blanks() -> None:
    # frames a a - a b b: the blank separates two a's, the repeats merge
    path = [A, A, BLANK, A, B, B]
    log_probs = frames(*({label: 0.9} for label in path))
    assert greedy_ctc(log_probs, BLANK) == [A, A, B]
    assert greedy_ctc(frames({A: 0.9}, {A: 0.9}, {A: 0.9}), BLANK) == [A]
    assert greedy_ctc(frames({BLANK: 0.9}, {BLANK: 0.9}), BLANK) == []
    assert greedy_ctc(np.zeros((0, 4), np.float32), BLANK) == []


def test_greedy_honours_a_blank_id_other_than_zero() -> None:
    log_probs = frames({3: 0.9}, {1: 0.9}, {3: 0.9}, {1: 0.9})
    assert greedy_ctc(log_probs, blank=3) == [1, 1]
    assert greedy_ctc(log_probs, blank=1) == [3, 3]


def test_beam_sums_alignments_where_best_path_does_not() -> None:
    # two frames of P(a) = 0.4, P(blank) = 0.6: the best path "- -" says nothing (0.36), but
    # "a" collects a a, a -, - a: 0.16 + 0.24 + 0.24 = 0.64
    log_probs = np.log(np.array([[0.6, 0.4], [0.6, 0.4]], dtype=np.float32))
    assert greedy_ctc(log_probs, 0) == []
    best = prefix_beam_search(log_probs, 0, beam_size=4)[0]
    assert best.labels == (1,)
    assert best.acoustic == pytest.approx(np.log(0.64), abs=1e-6)


def test_a_repeated_label_needs_a_blank_between() -> None:
    # a, then blank 0.8 / a 0.2, then a: "aa" is only a - a (0.9 * 0.8 * 0.9 = 0.648), while
    # "a" is a a a, a a -, a - -, - a a, - a -, - - a (0.344 in all)
    log_probs = np.log(np.array([[0.1, 0.9], [0.8, 0.2], [0.1, 0.9]], dtype=np.float32))
    hypotheses = prefix_beam_search(log_probs, 0, beam_size=8)
    scores = {h.labels: h.acoustic for h in hypotheses}
    assert scores[(1, 1)] == pytest.approx(np.log(0.9 * 0.8 * 0.9), abs=1e-6)
    p_a = 0.9 * 0.2 * 0.9 + 0.9 * 0.2 * 0.1 + 0.9 * 0.8 * 0.1 + 0.1 * 0.2 * 0.9
    p_a += 0.1 * 0.2 * 0.1 + 0.1 * 0.8 * 0.9
    assert scores[(1,)] == pytest.approx(np.log(p_a), abs=1e-6)
    assert hypotheses[0].labels == (1, 1)
    # without the blank frame the same sound is one "a"
    steady = np.log(np.array([[0.1, 0.9], [0.1, 0.9], [0.1, 0.9]], dtype=np.float32))
    assert prefix_beam_search(steady, 0, beam_size=8)[0].labels == (1,)


@pytest.mark.parametrize("seed", range(6))
def test_a_wide_beam_finds_the_most_probable_labelling(seed: int) -> None:
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(5, 3))
    log_probs = (logits - np.log(np.exp(logits).sum(1, keepdims=True))).astype(np.float32)
    truth = brute_force(log_probs, blank=seed % 3)
    hypotheses = prefix_beam_search(log_probs, seed % 3, beam_size=len(truth))
    best = max(truth, key=lambda labels: truth[labels])
    assert hypotheses[0].labels == best
    for hypothesis in hypotheses:  # every prefix's score is its exact summed probability
        assert hypothesis.acoustic == pytest.approx(np.log(truth[hypothesis.labels]), abs=1e-5)
    assert sum(np.exp(h.acoustic) for h in hypotheses) == pytest.approx(1.0, abs=1e-5)


def test_top_k_pruning_keeps_a_clear_answer_and_beam_one_stays_close_to_greedy() -> None:
    path = [A, BLANK, B, B, BLANK, C, C, A]
    log_probs = frames(*({label: 0.8} for label in path))
    full = prefix_beam_search(log_probs, BLANK, beam_size=6)[0]
    pruned = prefix_beam_search(log_probs, BLANK, beam_size=6, top_k=2)[0]
    assert full.labels == pruned.labels == (A, B, C, A)
    assert pruned.acoustic <= full.acoustic  # pruning drops alignments, never adds them
    assert list(prefix_beam_search(log_probs, BLANK, beam_size=1)[0].labels) == greedy_ctc(
        log_probs, BLANK
    )


def preferring(after: int, wanted: int, vocab: int = 4):
    """A language model that after label `after` gives `wanted` 0.97 and the rest 0.01 each."""

    def language_model(prefix: tuple[int, ...]) -> np.ndarray:
        p = np.full(vocab, 1.0 / vocab)
        if prefix and prefix[-1] == after:
            p = np.full(vocab, 0.01)
            p[wanted] = 1.0 - 0.01 * (vocab - 1)
        return np.log(p)

    return language_model


def test_fusion_with_a_language_model_changes_the_answer() -> None:
    # after a, the sound is b (0.5) or c (0.4): acoustics alone say "ab"
    log_probs = frames({A: 0.9}, {B: 0.5, C: 0.4}, {BLANK: 0.9})
    assert prefix_beam_search(log_probs, BLANK, 4)[0].labels == (A, B)
    lm = preferring(after=A, wanted=C)
    fused = prefix_beam_search(log_probs, BLANK, 4, language_model=lm, lm_weight=0.5)
    assert fused[0].labels == (A, C)
    # the LM is in the score, not the acoustics: log P_lm("ac") = log 0.25 + log 0.97
    assert fused[0].score == pytest.approx(fused[0].acoustic + 0.5 * np.log(0.25 * 0.97))
    # lm_weight 0 ignores the language model entirely
    ignored = prefix_beam_search(log_probs, BLANK, 4, language_model=lm, lm_weight=0.0)
    assert ignored[0].labels == (A, B)


def test_the_language_model_is_asked_once_per_prefix() -> None:
    calls: list[tuple[int, ...]] = []
    lm = preferring(after=A, wanted=C)

    def counted(prefix: tuple[int, ...]) -> np.ndarray:
        calls.append(prefix)
        return lm(prefix)

    log_probs = frames(*({label: 0.7} for label in [A, A, BLANK, C, C, B, BLANK]))
    prefix_beam_search(log_probs, BLANK, 4, language_model=counted, lm_weight=0.3)
    assert len(calls) == len(set(calls))


def test_token_bonus_rewards_longer_hypotheses() -> None:
    # the middle frame is b 0.45 / blank 0.55: "a" beats "ab" unless longer outputs get a bonus
    log_probs = frames({A: 0.97}, {BLANK: 0.55, B: 0.45}, {BLANK: 0.97})
    assert prefix_beam_search(log_probs, BLANK, 4)[0].labels == (A,)
    assert prefix_beam_search(log_probs, BLANK, 4, token_bonus=1.0)[0].labels == (A, B)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="blank id 5"):
        greedy_ctc(np.zeros((2, 4), np.float32), 5)
    with pytest.raises(ValueError, match="frames, vocabulary"):
        prefix_beam_search(np.zeros(4, np.float32), 0)
    with pytest.raises(ValueError, match="beam_size"):
        prefix_beam_search(np.zeros((2, 4), np.float32), 0, beam_size=0)
    assert prefix_beam_search(np.zeros((0, 4), np.float32), 0)[0].labels == ()


@pytest.mark.parametrize("seed", range(4))
def test_a_wide_fused_beam_finds_the_best_fused_score(seed: int) -> None:
    # the fused score of a labelling is log P_ctc + weight * log P_lm + bonus * length; with a
    # beam wide enough for every prefix, the search must find its maximum over all labellings
    rng = np.random.default_rng(100 + seed)
    logits = rng.normal(scale=2.0, size=(5, 3))
    log_probs = (logits - np.log(np.exp(logits).sum(1, keepdims=True))).astype(np.float32)
    table = rng.dirichlet(np.ones(3), size=(3, 3))  # P(next | last label), by last label

    def language_model(prefix: tuple[int, ...]) -> np.ndarray:
        return np.log(table[prefix[-1] if prefix else 0][0])

    def lm_score(labels: tuple[int, ...]) -> float:
        return sum(float(language_model(labels[:i])[labels[i]]) for i in range(len(labels)))

    truth = brute_force(log_probs, blank=0)
    weight, bonus = 0.7, 0.3
    fused = {y: np.log(p) + weight * lm_score(y) + bonus * len(y) for y, p in truth.items()}
    found = prefix_beam_search(
        log_probs, 0, len(truth), language_model=language_model, lm_weight=weight, token_bonus=bonus
    )
    assert found[0].labels == max(fused, key=lambda y: fused[y])
    assert found[0].score == pytest.approx(fused[found[0].labels], abs=1e-5)
