"""Vision Transformer (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words"): an image cut
into patches, each patch a token, a class token in front, learned positions, pre-norm
Transformer blocks (megalith.models.attention), and the class token's final state as the
image's features.

    (B, C, H, W) ─► patches (B, N, D) ─► [CLS] + patches + positions (B, 1+N, D)
                 ─► blocks ─► LayerNorm ─► class token (B, D)

Images whose sides are not multiples of the patch size are zero-padded on the right and bottom
(after normalisation, so padding is the mean colour). The attention of every block is what
`megalith explain` maps for an image input (megalith.explain.attention).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import Field, PositiveInt
from torch import nn

from megalith.configbase import ConfigModel
from megalith.data.specs import InputSpec, OutputSpec
from megalith.models.attention import Positions, TransformerBlock, check_heads
from megalith.models.blocks import FeatureModel, image_shape
from megalith.models.cnn import require_image_input
from megalith.models.registry import register_model


class ViTConfig(ConfigModel):
    """A Vision Transformer for image inputs, combined with any other inputs by an MLP."""

    arch: Literal["vit"] = "vit"
    patch_size: int = Field(default=4, gt=0)
    """Side of the square patches, in pixels; each patch is one token."""
    dim: int = Field(default=64, gt=0)
    """Width of the tokens (a multiple of heads)."""
    depth: int = Field(default=4, gt=0)
    """Number of Transformer blocks."""
    heads: int = Field(default=4, gt=0)
    """Attention heads per block."""
    dropout: float = Field(default=0.1, ge=0, lt=1)
    """Dropout on attention weights, block outputs and the fully connected layers."""
    hidden: list[PositiveInt] = []
    """Widths of fully connected layers after the inputs are combined."""


class PatchEmbedding(nn.Module):
    """(B, C, H, W) -> (B, N, D): a conv with kernel = stride = patch size, one token per patch
    (equivalent to a linear projection of each flattened patch)."""

    def __init__(self, channels: int, height: int, width: int, patch: int, dim: int) -> None:
        super().__init__()
        self.rows, self.columns = math.ceil(height / patch), math.ceil(width / patch)
        pad_bottom, pad_right = self.rows * patch - height, self.columns * patch - width
        self.pad = nn.ZeroPad2d((0, pad_right, 0, pad_bottom))  # sizes fixed at build time
        self.project = nn.Conv2d(channels, dim, kernel_size=patch, stride=patch)

    @property
    def count(self) -> int:
        """N, the number of patches (rows x columns, row-major)."""
        return self.rows * self.columns

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = self.project(self.pad(x))  # (B, D, rows, columns)
        return patches.flatten(2).transpose(1, 2)  # (B, N, D)


class VisionTransformer(nn.Module):
    """Normalised float (B, C, H, W) -> the class token's final state (B, D)."""

    def __init__(self, spec: InputSpec, config: ViTConfig) -> None:
        super().__init__()
        channels, height, width = image_shape(spec)
        check_heads(config.dim, config.heads, "model.dim")
        self.patches = PatchEmbedding(channels, height, width, config.patch_size, config.dim)
        self.class_token = nn.Parameter(torch.zeros(1, 1, config.dim))
        nn.init.trunc_normal_(self.class_token, std=0.02)
        self.positions = Positions("learned", self.patches.count + 1, config.dim)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(config.dim, config.heads, config.dropout) for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(config.dim)
        self.out_features = config.dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patches(x)  # (B, N, D)
        cls = self.class_token.expand(tokens.shape[0], -1, -1)  # (B, 1, D)
        h = self.drop(self.positions(torch.cat([cls, tokens], dim=1)))  # (B, 1+N, D)
        for block in self.blocks:
            h, _ = block(h)
        return self.norm(h[:, 0])  # (B, D), the class token

    def token_labels(self) -> list[str]:
        """A name per token, for attention maps: [CLS], then 'patch ROW,COLUMN' row-major."""
        grid = [
            f"patch {r},{c}" for r in range(self.patches.rows) for c in range(self.patches.columns)
        ]
        return ["[CLS]", *grid]


@register_model("vit")
def build_vit(
    config: ViTConfig, inputs: Sequence[InputSpec], outputs: Sequence[OutputSpec]
) -> FeatureModel:
    """Each image through its own Vision Transformer; other inputs encoded by type; MLP; heads."""
    require_image_input("vit", inputs)

    def backbone(spec: InputSpec) -> tuple[nn.Module, int]:
        vit = VisionTransformer(spec, config)
        return vit, vit.out_features

    return FeatureModel(
        inputs,
        outputs,
        image_backbone=backbone,
        hidden=config.hidden,
        activation="gelu",
        dropout=config.dropout,
    )
