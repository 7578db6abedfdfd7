"""Encoder-decoder Transformer (seq2seq): one text input -> one text output.

    source (B, S) ─► embeddings + positions ─► N self-attention blocks ─► memory (B, S, D)
    target (B, T) ─► embeddings + positions ─► N causal blocks, each also attending to the
                     memory (cross-attention) ─► logits (B, T, V) for the next target token

Training uses teacher forcing: the decoder reads the true target shifted right (BOS first) and
predicts each next token. Decoding (`greedy_decode`, `beam_search`) feeds its own output back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from megalith.configbase import ConfigModel
from megalith.data.specs import InputSpec, OutputSpec
from megalith.data.tensors import TensorTable
from megalith.data.tokenizers import BOS, EOS, PAD
from megalith.errors import ConfigError
from megalith.models.attention import KVCache, Positions, TransformerBlock, check_heads
from megalith.models.registry import register_model


class Seq2SeqConfig(ConfigModel):
    """An encoder-decoder Transformer from one text input to one text output."""

    arch: Literal["seq2seq"] = "seq2seq"
    layers: int = Field(3, gt=0)
    """Blocks in the encoder, and again in the decoder."""
    heads: int = Field(4, gt=0)
    """Attention heads per block; dim must be a multiple."""
    dim: int = Field(128, gt=0)
    """Width of the token vectors."""
    dropout: float = Field(0.1, ge=0, lt=1)
    """Dropout on embeddings, attention and block outputs."""
    beam_size: int = Field(4, gt=0)
    """Beams when predicting and evaluating; 1 is greedy decoding."""
    max_new_tokens: int | None = Field(None, gt=0)
    """Longest output when decoding; by default the longest train target."""


class TextDecoder:
    """The seq2seq family's Transformer decoder, for any nn.Module with an encoder memory (the
    seq2seq model, the hybrid CTC/attention recognizer of megalith.models.asr): token embeddings
    + sinusoidal positions -> causal blocks that also attend to the memory -> logits through the
    tied embedding. The host sets `drop` (nn.Dropout) and `scale` (sqrt(dim))."""

    target_embedding: nn.Embedding
    target_positions: Positions
    decoder: nn.ModuleList
    decoder_norm: nn.LayerNorm
    drop: nn.Module
    scale: float

    def build_decoder(
        self, vocab: int, positions: int, dim: int, heads: int, dropout: float, layers: int
    ) -> None:
        """Create the decoder's modules on the host (their names are the checkpoint's keys)."""
        self.target_embedding = nn.Embedding(vocab, dim, padding_idx=PAD)
        self.target_positions = Positions("sinusoidal", positions, dim)
        self.decoder = nn.ModuleList(
            TransformerBlock(dim, heads, dropout, cross=True) for _ in range(layers)
        )
        self.decoder_norm = nn.LayerNorm(dim)

    def decode(
        self,
        target: torch.Tensor,
        memory: torch.Tensor,
        mask: torch.Tensor,
        caches: Sequence[KVCache] | None = None,
        start: int = 0,
    ) -> tuple[torch.Tensor, list[KVCache]]:
        """target ids (B, T) at positions start.., BOS first -> next-token logits (B, T, V) and
        each decoder block's self-attention keys / values; with `caches` (from the previous
        call) the ids continue that prefix, so decoding feeds one new token per step."""
        x = self.target_embedding(target) * self.scale
        x = self.drop(self.target_positions(x, start))
        new_caches = []
        for i, block in enumerate(self.decoder):
            cache = caches[i] if caches else None
            x, kv = block(x, causal=True, cache=cache, context=memory, context_mask=mask)
            new_caches.append(kv)
        return F.linear(self.decoder_norm(x), self.target_embedding.weight), new_caches  # tied


class Seq2Seq(TextDecoder, nn.Module):
    """forward({source: (B, S), target: (B, T)}) -> {target: logits (B, T, V)} (teacher forcing)."""

    def __init__(self, config: Seq2SeqConfig, source: InputSpec, target: OutputSpec) -> None:
        super().__init__()
        check_heads(config.dim, config.heads, "model.dim")
        self.source_name, self.name = source.name, target.name
        self.max_target = target.shape[0] if target.shape else 128
        self.max_new_tokens = config.max_new_tokens or self.max_target
        source_length = source.shape[0] if source.shape else 512
        dim, heads, dropout = config.dim, config.heads, config.dropout
        self.source_embedding = nn.Embedding(source.vocab_size, dim, padding_idx=PAD)
        self.source_positions = Positions("sinusoidal", source_length, dim)
        self.encoder = nn.ModuleList(
            TransformerBlock(dim, heads, dropout) for _ in range(config.layers)
        )
        self.encoder_norm = nn.LayerNorm(dim)
        positions = max(self.max_target, self.max_new_tokens + 1)
        self.build_decoder(target.num_classes, positions, dim, heads, dropout, config.layers)
        self.drop = nn.Dropout(dropout)
        self.scale = dim**0.5
        for embedding in (self.source_embedding, self.target_embedding):
            # small rows, scaled up by sqrt(dim) on the way in: positions stay visible, and the
            # tied output projection starts with small logits
            nn.init.normal_(embedding.weight, std=dim**-0.5)
            with torch.no_grad():
                embedding.weight[PAD].zero_()

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        memory, memory_mask = self.encode(inputs[self.source_name])
        logits, _ = self.decode(inputs[self.name], memory, memory_mask)
        return {self.name: logits}

    def encode(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """source ids (B, S) -> memory (B, S, D) and its attention mask (B, 1, 1, S)."""
        return self.encode_embeddings(self.source_embedding(source), source)

    def encode_embeddings(
        self, embeddings: torch.Tensor, source: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """encode from the source's token embeddings (B, S, D), before scaling and positions
        (what explain attributes to); `source` ids (B, S) give the padding mask."""
        real = source != PAD
        real = torch.cat([torch.ones_like(real[:, :1]), real[:, 1:]], dim=1)  # never all-masked
        mask = real[:, None, None, :]
        x = self.drop(self.source_positions(embeddings * self.scale))
        for block in self.encoder:
            x, _ = block(x, mask=mask)
        return self.encoder_norm(x), mask


@torch.inference_mode()
def beam_search(
    model: Seq2Seq,
    source: torch.Tensor,
    beam_size: int,
    max_new_tokens: int | None = None,
    use_cache: bool = True,
) -> torch.Tensor:
    """Most likely target ids (B, L) per source row, without BOS, ended by EOS, padded with PAD.

    Keeps `beam_size` hypotheses per row, scored by total log-probability divided by length
    (so long outputs are not penalised for being long); beam_size 1 is greedy decoding. With
    the cache, each step feeds only the newest token and reuses (reordered with the beams) the
    decoder's keys and values of the prefix; without it, each step decodes the whole prefix.
    """
    model.eval()
    steps = min(max_new_tokens or model.max_new_tokens, model.target_positions.max_length - 1)
    batch, device = source.shape[0], source.device
    memory, mask = model.encode(source)
    k = beam_size
    # every row's beams side by side: (B*k, ...)
    memory, mask = memory.repeat_interleave(k, dim=0), mask.repeat_interleave(k, dim=0)
    tokens = torch.full((batch * k, 1), BOS, dtype=torch.long, device=device)
    scores = torch.zeros(batch, k, device=device)
    scores[:, 1:] = float("-inf")  # at first all beams are the same: keep one
    finished = torch.zeros(batch * k, dtype=torch.bool, device=device)
    caches: list[KVCache] | None = None
    for step in range(steps):
        if use_cache:
            newest = tokens[:, -1:] if caches is not None else tokens
            logits, caches = model.decode(newest, memory, mask, caches, start=step)
        else:
            logits, _ = model.decode(tokens, memory, mask)
        logits = logits[:, -1].float()  # (B*k, V)
        log_probs = logits.log_softmax(-1)
        # a finished beam only extends with PAD, at no cost
        log_probs[finished] = float("-inf")
        log_probs[finished, PAD] = 0.0
        vocab = log_probs.shape[-1]
        total = (scores.view(-1, 1) + log_probs).view(batch, k * vocab)
        scores, flat = total.topk(k, dim=-1)  # (B, k)
        beam = flat // vocab + torch.arange(batch, device=device).unsqueeze(1) * k
        token = (flat % vocab).view(-1, 1)
        tokens = torch.cat([tokens[beam.view(-1)], token], dim=1)
        if caches is not None:  # each surviving beam takes its parent's keys and values
            order = beam.view(-1)
            caches = [(keys[order], values[order]) for keys, values in caches]
        finished = finished[beam.view(-1)] | (token.squeeze(1) == EOS)
        if bool(finished.all()):
            break
    lengths = ((tokens[:, 1:] != PAD) & (tokens[:, 1:] != EOS)).sum(dim=1).clamp(min=1)
    normalised = scores.view(-1) / lengths.float()
    best = normalised.view(batch, k).argmax(dim=1) + torch.arange(batch, device=device) * k
    return tokens[best, 1:]


def decode_in_batches(
    model: Seq2Seq, table: TensorTable, batch_size: int, device: torch.device, beam_size: int
) -> torch.Tensor:
    """Beam-search outputs for every row of `table`: int64 (N, L) on the CPU, PAD-padded."""
    pieces = []
    for start in range(0, len(table), batch_size):
        source = table.inputs[model.source_name][start : start + batch_size].to(device)
        pieces.append(beam_search(model, source, beam_size).cpu())
    width = max((p.shape[1] for p in pieces), default=0)
    return torch.cat([F.pad(p, (0, width - p.shape[1]), value=PAD) for p in pieces])


def teacher_forcing(table: TensorTable, name: str) -> TensorTable:
    """Targets (B, T+1) framed BOS ... EOS -> decoder input (B, T) without the last token, and
    target (B, T) without BOS: position t reads token t and predicts token t+1."""
    framed = table.targets[name]
    return TensorTable(
        inputs={**table.inputs, name: framed[:, :-1]},
        targets={**table.targets, name: framed[:, 1:]},
        rows=table.rows,
    )


@register_model("seq2seq")
def build_seq2seq(
    config: Seq2SeqConfig, inputs: Sequence[InputSpec], outputs: Sequence[OutputSpec]
) -> Seq2Seq:
    """The encoder reads the one text input; the decoder writes the one text output."""
    if len(inputs) != 1 or inputs[0].type != "text" or len(outputs) != 1:
        raise ConfigError("model.arch seq2seq needs one text input and one text output")
    if outputs[0].type != "text":
        raise ConfigError("model.arch seq2seq needs one text input and one text output")
    return Seq2Seq(config, inputs[0], outputs[0])
