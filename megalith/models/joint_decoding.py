"""Joint CTC/attention decoding of a hybrid recognizer (`model.ctc_weight` below 1).

S. Watanabe, T. Hori, S. Kim, J. R. Hershey, T. Hayashi, "Hybrid CTC/Attention Architecture for
End-to-End Speech Recognition", IEEE JSTSP 2017, section III (one-pass beam search, Algorithm 2
for the CTC prefix score). Each hypothesis h of the attention decoder's beam search is scored

    score(h) = λ · log p_ctc(h... | X) + (1 - λ) · log p_att(h | X)

where p_ctc(h... | X) is the CTC *prefix* probability: the probability that the frames' CTC
labelling begins with h (for h ended by EOS, that it is exactly h). The CTC side decides where
a transcript ends (EOS scores the whole labelling) and bounds its length (one label a frame at
most); the attention side brings the dependencies between tokens. Both scores only fall as a
hypothesis grows, so the search stops as soon as a finished hypothesis beats every live one.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from megalith.data.tokenizers import BOS, EOS, PAD
from megalith.runtime.transcription import TranscriptionStopped

NEG_INF = float("-inf")
PRE_BEAM = 8
"""Fewest candidate tokens per hypothesis (taken by the decoder's scores) that the CTC prefix
score is computed for; ESPnet's rule, 1.5 x beam_size, when that is larger."""


class CTCPrefixScorer:
    """CTC prefix scores of one utterance (Watanabe et al. 2017, Algorithm 2), in log space.

    A prefix g carries r (T, 2): r[t, 0] = log r_t^n(g), the probability that frames 1..t
    label g and frame t emits g's last token; r[t, 1] = log r_t^b(g), the same ending in blank.
    """

    def __init__(self, log_probs: torch.Tensor, blank: int = PAD, eos: int = EOS) -> None:
        """
        Args:
            log_probs: (T, V) CTC log-probabilities of the utterance's real frames.
            blank, eos: the blank id and the end-of-sentence id.
        """
        self.x, self.blank, self.eos = log_probs.float(), blank, eos
        self.frames = log_probs.shape[0]

    def initial(self) -> torch.Tensor:
        """r (T, 2) of the empty prefix: never a label, all blanks."""
        r = torch.full((self.frames, 2), NEG_INF, device=self.x.device)
        r[:, 1] = torch.cumsum(self.x[:, self.blank], dim=0)
        return r

    def extend(
        self, r: torch.Tensor, last: torch.Tensor, candidates: torch.Tensor, length: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prefix scores of every h = g + c.

        Args:
            r: (K, T, 2) of the K prefixes g.
            last: (K,) each prefix's last token (ignored when `length` is 0).
            candidates: (K, P) token ids c to extend each prefix with.
            length: the labels in every g (0: only BOS so far); h's last label cannot come
                before frame `length`, so earlier frames are skipped.
        Returns:
            log p_ctc(h...) (K, P), and r of each h (K, P, T, 2).
        """
        x_c = self.x[:, candidates]  # (T, K, P)
        r_n, r_b = r[:, :, 0].T.unsqueeze(-1), r[:, :, 1].T.unsqueeze(-1)  # (T, K, 1)
        # phi_t: g labelled by frame t and ready for c (after a blank when c repeats g's end)
        repeat = (candidates == last.unsqueeze(1)).unsqueeze(0) & (length > 0)  # (1, K, P)
        phi = torch.where(repeat, r_b, torch.logaddexp(r_n, r_b))  # (T, K, P)
        new_n = torch.full_like(x_c, NEG_INF)
        new_b = torch.full_like(x_c, NEG_INF)
        if length == 0:
            new_n[0] = x_c[0]
        for t in range(max(1, length), self.frames):
            new_n[t] = torch.logaddexp(new_n[t - 1], phi[t - 1]) + x_c[t]
            new_b[t] = torch.logaddexp(new_b[t - 1], new_n[t - 1]) + self.x[t, self.blank]
        psi = torch.logsumexp(torch.cat([new_n[:1], phi[:-1] + x_c[1:]]), dim=0)  # (K, P)
        ended = torch.logaddexp(r_n[-1], r_b[-1])  # (K, 1): the labelling is exactly g
        psi = torch.where(candidates == self.eos, ended, psi)
        return psi, torch.stack([new_n, new_b], dim=-1).permute(1, 2, 0, 3)


@torch.inference_mode()
def joint_beam_search(
    model: Any,
    memory: torch.Tensor,
    log_probs: torch.Tensor,
    beam_size: int,
    ctc_weight: float,
    stop: threading.Event | None = None,
) -> list[int]:
    """The best transcript of one utterance by the joint score (module docstring); `stop`, set
    by another thread (a server's time limit), ends it before its next step.

    Args:
        model: a hybrid megalith.models.asr.ASR (its `decode` and `max_tokens`).
        memory: (T, D) encoder output of the real frames.
        log_probs: (T, V) CTC log-probabilities of the same frames.
        beam_size: hypotheses kept per step.
        ctc_weight: λ in (0, 1): the CTC prefix score's weight.
    Returns:
        Token ids without BOS / EOS; at most T (CTC's bound) and model.max_tokens of them.
    Raises:
        TranscriptionStopped: `stop` was set.
    """
    scorer = CTCPrefixScorer(log_probs)
    frames, vocab = log_probs.shape
    max_length = min(frames, model.max_tokens)
    pre_beam = min(vocab, max(PRE_BEAM, int(1.5 * beam_size)))
    hyps: list[list[int]] = [[BOS]]
    att = torch.zeros(1, device=memory.device)  # (K,) log p_att of each hypothesis
    r = scorer.initial().unsqueeze(0)  # (K, T, 2)
    caches: Any = None
    finished: list[tuple[float, list[int]]] = []
    for step in range(max_length + 1):
        if stop is not None and stop.is_set():  # a long recording's search takes minutes
            raise TranscriptionStopped("transcription stopped: its time limit passed")
        newest = torch.tensor([[h[-1]] for h in hyps], device=memory.device)  # (K, 1)
        context = memory.expand(len(hyps), -1, -1)
        mask = torch.ones(len(hyps), 1, 1, frames, dtype=torch.bool, device=memory.device)
        logits, caches = model.decode(newest, context, mask, caches, start=step)
        att_lp = logits[:, -1].float().log_softmax(-1)  # (K, V)
        att_lp[:, [PAD, BOS]] = NEG_INF  # never emitted
        if step == max_length:  # CTC's bound: no frame left for another label
            candidates = torch.full((len(hyps), 1), EOS, device=memory.device)
        else:
            candidates = att_lp.topk(pre_beam, dim=-1).indices  # (K, P)
        last = torch.tensor([h[-1] for h in hyps], device=memory.device)
        psi, r_next = scorer.extend(r, last, candidates, step)
        att_next = att.unsqueeze(1) + att_lp.gather(1, candidates)  # (K, P)
        score = ctc_weight * psi + (1 - ctc_weight) * att_next
        flat = score.flatten()
        best = flat.topk(min(beam_size, int(torch.isfinite(flat).sum()) or 1)).indices
        keep = []
        for index in best.tolist():
            k, p = divmod(index, candidates.shape[1])
            token = int(candidates[k, p])
            if token == EOS:
                finished.append((float(flat[index]), hyps[k][1:]))
            else:
                keep.append((k, p, token))
        if not keep:
            break
        alive = max(float(score[k, p]) for k, p, _ in keep)
        if finished and max(f[0] for f in finished) >= alive:
            break  # every extension of a live hypothesis scores lower still
        ks = torch.tensor([k for k, _, _ in keep], device=memory.device)
        ps = torch.tensor([p for _, p, _ in keep], device=memory.device)
        hyps = [hyps[k] + [token] for k, _, token in keep]
        att, r = att_next[ks, ps], r_next[ks, ps]
        caches = [(keys[ks], values[ks]) for keys, values in caches]
    return max(finished, key=lambda f: f[0])[1] if finished else []


def real_frames(logits: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
    """int64 (B,): frames before each row's trailing padding frames, whose logits are exactly
    the model's padding logits (megalith.models.asr: certain blanks)."""
    is_padding = (logits == padding.to(logits.dtype)).all(dim=-1)  # (B, T)
    trailing = torch.cumprod(is_padding.flip(1).long(), dim=1).sum(dim=1)
    return (logits.shape[1] - trailing).clamp(min=1)


_threads_lock = threading.Lock()
_threads_users = 0
_threads_before = 1


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """PyTorch's intra-op threads at 1 while any caller is inside, restored when the last one
    leaves: a server's concurrent requests each saving and restoring the process-wide count
    would leave it at 1 when the second to enter left last."""
    global _threads_users, _threads_before
    with _threads_lock:
        if _threads_users == 0:
            _threads_before = torch.get_num_threads()
            torch.set_num_threads(1)
        _threads_users += 1
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0:
                torch.set_num_threads(_threads_before)


class JointDecoder:
    """A hybrid recognizer's joint CTC/attention decoding of whole batches: CTC logits and the
    encoder output -> token ids (see `joint_beam_search`)."""

    def __init__(self, model: Any, beam_size: int, ctc_weight: float) -> None:
        self.model, self.beam_size, self.ctc_weight = model, beam_size, ctc_weight

    def rows(
        self, logits: torch.Tensor, memory: torch.Tensor, stop: threading.Event | None = None
    ) -> list[list[int]]:
        """logits (B, T, V) and memory (B, T, D) -> one id list per row; `stop` as in
        `joint_beam_search`."""
        lengths = real_frames(logits, self.model.padding_logits)
        log_probs = logits.float().log_softmax(-1)
        # one thread: every step is one token through a small decoder, where a second thread
        # only adds synchronisation (on 2 busy cores: 0.36 s for two clips on one, 12.9 s on two)
        with one_thread():
            return [
                joint_beam_search(
                    self.model, memory[i, :n].float(), log_probs[i, :n], self.beam_size,
                    self.ctc_weight, stop,
                )
                for i, n in enumerate(lengths.tolist())
            ]  # fmt: skip

    def from_outputs(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The model's outputs (CTC logits and `:memory`) -> int64 (B, L) ids, PAD-padded."""
        from megalith.models.asr import MEMORY

        name = self.model.name
        return padded(self.rows(outputs[name], outputs[name + MEMORY]))

    def from_frames(self, frames: np.ndarray, stop: threading.Event | None = None) -> list[int]:
        """One recording's stitched frames (T, V + D): CTC logits then encoder output."""
        vocab = int(self.model.padding_logits.shape[0])
        scores = torch.from_numpy(np.asarray(frames, dtype=np.float32)).unsqueeze(0)
        device = self.model.padding_logits.device
        logits, memory = scores[..., :vocab].to(device), scores[..., vocab:].to(device)
        return self.rows(logits, memory, stop)[0]


def padded(rows: Sequence[Sequence[int]]) -> torch.Tensor:
    """Id lists -> int64 (B, L) left-aligned, PAD on the right (L >= 1)."""
    width = max((len(row) for row in rows), default=0)
    out = torch.full((len(rows), max(width, 1)), PAD, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out
