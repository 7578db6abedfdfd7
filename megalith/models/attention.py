"""Transformer pieces shared by the text encoder, the GPT decoder and the seq2seq model.

Attention goes through `F.scaled_dot_product_attention`, which picks a flash or memory-efficient
kernel on GPU when the mask allows it. Blocks are pre-norm (LayerNorm before attention and MLP),
which trains stably without learning-rate warmup tricks at these depths.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from megalith.errors import ConfigError

KVCache = tuple[torch.Tensor, torch.Tensor]
"""Keys and values of the positions seen so far, each (B, heads, T_past, head_dim)."""


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """The fixed sine / cosine position table of "Attention is all you need": (length, dim)."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)  # (L, 1)
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(1e4) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    return table


class Positions(nn.Module):
    """Adds a position vector to each token: learned (an embedding) or sinusoidal (fixed)."""

    table: torch.Tensor

    def __init__(self, kind: str, max_length: int, dim: int) -> None:
        super().__init__()
        self.learned = kind == "learned"
        if self.learned:
            self.embedding = nn.Embedding(max_length, dim)
            nn.init.normal_(self.embedding.weight, std=0.02)
        else:  # derived, so not saved with the weights
            self.register_buffer("table", sinusoidal_positions(max_length, dim), persistent=False)
        self.max_length = max_length

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        """x: (B, T, D), the tokens at positions start .. start+T-1."""
        length = x.shape[1]
        if self.learned:
            index = torch.arange(start, start + length, device=x.device)
            return x + self.embedding(index)
        return x + self.table[start : start + length].to(x.dtype)


def check_heads(dim: int, heads: int, where: str) -> None:
    """Attention splits `dim` into `heads` equal parts."""
    if dim % heads:
        raise ConfigError(f"{where}: the width {dim} must be a multiple of heads ({heads})")


class Attention(nn.Module):
    """Multi-head attention; self-attention when `context` is None, cross-attention otherwise."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.query = nn.Linear(dim, dim)
        self.key_value = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        causal: bool = False,
        context: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> tuple[torch.Tensor, KVCache]:
        """x: (B, T, D) -> (B, T, D), and the keys / values to cache.

        mask: bool, broadcastable to (B, heads, T, S), True where attending is allowed.
        causal: each position sees itself and the earlier ones (with a cache: all cached ones).
        cache: keys / values of earlier positions, prepended to this call's.
        """
        b, t, d = x.shape
        source = x if context is None else context
        q = self.query(x).view(b, t, self.heads, d // self.heads).transpose(1, 2)  # (B, H, T, hd)
        kv = self.key_value(source).view(b, source.shape[1], 2, self.heads, d // self.heads)
        k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, S, hd)
        if cache is not None:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        # with a cache of earlier positions, the new queries may see every cached key: a causal
        # mask is only needed among the new positions, and SDPA's is_causal aligns top-left
        is_causal = causal and (cache is None or t > 1)
        if is_causal and cache is not None:
            past = cache[0].shape[2]
            mask = torch.ones(t, past + t, dtype=torch.bool, device=x.device).tril(past)
            is_causal = False
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=is_causal,
        )  # (B, H, T, hd)
        return self.out(y.transpose(1, 2).reshape(b, t, d)), (k, v)


class FeedForward(nn.Sequential):
    """Linear -> GELU -> Linear -> Dropout, 4x wide inside by default."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__(
            nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim), nn.Dropout(dropout)
        )


class TransformerBlock(nn.Module):
    """Pre-norm block: x + attention(norm(x)) [+ cross-attention] + MLP(norm(x)).

    With `recompute` set (`train.activation_checkpointing: true`), training keeps only the
    block's input and recomputes the rest in the backward pass: less memory, same gradients.
    """

    recompute = False

    def __init__(self, dim: int, heads: int, dropout: float, cross: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attention = Attention(dim, heads, dropout)
        self.cross_norm = nn.LayerNorm(dim) if cross else None
        self.cross = Attention(dim, heads, dropout) if cross else None
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, 4 * dim, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        causal: bool = False,
        cache: KVCache | None = None,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, KVCache]:
        """x: (B, T, D) -> (B, T, D), and this block's self-attention keys / values."""
        if self.recompute and self.training and torch.is_grad_enabled() and cache is None:
            return checkpoint(
                self._forward, x, mask, causal, None, context, context_mask, use_reentrant=False
            )
        return self._forward(x, mask, causal, cache, context, context_mask)

    def _forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        causal: bool,
        cache: KVCache | None,
        context: torch.Tensor | None,
        context_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, KVCache]:
        attended, kv = self.attention(self.norm1(x), mask=mask, causal=causal, cache=cache)
        x = x + self.drop(attended)
        if self.cross is not None and self.cross_norm is not None and context is not None:
            crossed, _ = self.cross(self.cross_norm(x), mask=context_mask, context=context)
            x = x + self.drop(crossed)
        return x + self.mlp(self.norm2(x)), kv
