"""The hybrid recognizer's decoding: the CTC prefix score against a hand-worked example and every
alignment enumerated, and the joint beam search's use of both scores."""

import itertools
import math

import pytest
import torch

from megalith.data.tokenizers import BOS, EOS, PAD
from megalith.models.joint_decoding import CTCPrefixScorer, joint_beam_search, real_frames

A, B = 4, 5  # ordinary token ids; 0 is the blank (PAD), 3 is EOS


def collapse(path: tuple[int, ...]) -> list[int]:
    out: list[int] = []
    previous = PAD
    for label in path:
        if label != PAD and label != previous:
            out.append(label)
        previous = label
    return out


def brute_force(p: torch.Tensor, prefix: list[int], exact: bool) -> float:
    """Sum over every frame path whose collapsed labels start with (or equal) `prefix`."""
    total = 0.0
    labels = [PAD, A, B]
    for path in itertools.product(labels, repeat=p.shape[0]):
        out = collapse(path)
        if (out == prefix) if exact else (out[: len(prefix)] == prefix):
            total += math.prod(float(p[t, label]) for t, label in enumerate(path))
    return total


def scores(log_probs: torch.Tensor, prefix: list[int], candidates: list[int]) -> torch.Tensor:
    """log p_ctc(prefix + c ...) for each candidate c, the prefix built token by token."""
    scorer = CTCPrefixScorer(log_probs)
    r = scorer.initial().unsqueeze(0)
    for i, token in enumerate(prefix):
        last = torch.tensor([prefix[i - 1] if i else -1])
        _, r_all = scorer.extend(r, last, torch.tensor([[token]]), i)
        r = r_all[:, 0]
    last = torch.tensor([prefix[-1] if prefix else -1])
    psi, _ = scorer.extend(r, last, torch.tensor([candidates]), len(prefix))
    return psi[0]


def test_prefix_score_by_hand_on_two_frames():
    # frames: P(blank, a, b) = (.5, .4, .1) then (.6, .3, .1)
    p = torch.zeros(2, 6)
    p[0, [PAD, A, B]] = torch.tensor([0.5, 0.4, 0.1])
    p[1, [PAD, A, B]] = torch.tensor([0.6, 0.3, 0.1])
    psi = scores(p.log(), [], [A, EOS]).exp()
    # "a..." : frame 1 emits a (.4, whatever follows: .4 * 1), or blank then a (.5 * .3)
    assert psi[0].item() == pytest.approx(0.4 + 0.5 * 0.3, rel=1e-6)
    # EOS after nothing: both frames blank
    assert psi[1].item() == pytest.approx(0.5 * 0.6, rel=1e-6)
    # "a" exactly: a a, a _, _ a = .4*.3 + .4*.6 + .5*.3
    exact = scores(p.log(), [A], [EOS]).exp()
    assert exact[0].item() == pytest.approx(0.12 + 0.24 + 0.15, rel=1e-6)
    # "aa..." needs a blank between the two a's: impossible in two frames
    assert scores(p.log(), [A], [A]).exp()[0].item() == 0.0


@pytest.mark.parametrize("prefix", [[A], [B], [A, A], [A, B], [B, A, B]])
def test_prefix_score_equals_every_alignment_summed(prefix):
    torch.manual_seed(len(prefix))
    p = torch.zeros(5, 6)
    p[:, [PAD, A, B]] = torch.rand(5, 3).softmax(-1)
    psi = scores(p.log(), prefix[:-1], [prefix[-1], EOS]).exp()
    assert psi[0].item() == pytest.approx(brute_force(p, prefix, exact=False), rel=1e-5)
    exact = scores(p.log(), prefix, [EOS]).exp()
    assert exact[0].item() == pytest.approx(brute_force(p, prefix, exact=True), rel=1e-5)


class Scripted:
    """A stand-in decoder: next-token log-probabilities fixed by the prefix's length."""

    max_tokens = 10

    def __init__(self, table: list[dict[int, float]]) -> None:
        self.table = table

    def decode(self, newest, memory, mask, caches, start=0):
        row = torch.full((6,), -30.0)
        for token, p in self.table[min(start, len(self.table) - 1)].items():
            row[token] = math.log(p)
        logits = row.expand(newest.shape[0], 1, 6).clone()
        kv = (torch.zeros(newest.shape[0], 1), torch.zeros(newest.shape[0], 1))
        return logits, [kv]


def test_joint_search_follows_ctc_where_attention_is_unsure_and_ends_by_ctc():
    # CTC says "a b" clearly; the decoder prefers "b" first, weakly
    p = torch.full((4, 6), 1e-4)
    p[0, A], p[1, PAD], p[2, B], p[3, PAD] = 0.99, 0.99, 0.99, 0.99
    log_probs = p / p.sum(-1, keepdim=True)
    decoder = Scripted([{A: 0.4, B: 0.6}, {A: 0.5, B: 0.5}, {EOS: 0.9}])
    memory = torch.zeros(4, 2)
    assert joint_beam_search(decoder, memory, log_probs.log(), 4, 0.5) == [A, B]
    # with the attention alone in charge (tiny CTC weight), its own first choice wins
    assert joint_beam_search(decoder, memory, log_probs.log(), 4, 1e-6)[0] == B


def test_real_frames_drop_trailing_padding_only():
    padding = torch.full((6,), -1e4)
    padding[PAD] = 0
    logits = torch.randn(2, 5, 6)
    logits[0, 3:] = padding
    logits[1, 1] = padding  # inside the clip: a real frame
    assert real_frames(logits, padding).tolist() == [3, 5]
    assert BOS not in (PAD, EOS)
