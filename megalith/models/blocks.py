"""Shared layers: encode each input by type, combine them with an MLP, decode one head per output.

    inputs ─► encoder per input ─► concat ─► combiner MLP ─► head per output ─► outputs
           (B,) / (B, L) / (B, C, H, W)     (B, F)        (B, H)          (B, K) or (B,)
           / (B, S) waveforms

The tensor contract (dtypes, shapes, reserved indices) is the one in `megalith.data.specs`.
Families differ only in the image backbone they supply (flatten, conv stages, residual stages);
an audio input's log-mel spectrogram goes through that backbone as a one-channel image.
Everything is plain PyTorch without data-dependent Python control flow, so `torch.compile`
traces a whole model as one graph, and images may arrive in channels_last memory format.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from megalith.data.specs import InputSpec, OutputSpec
from megalith.errors import ConfigError
from megalith.models.audio_frames import clip_frames, pad_to_length, trim_to_longest
from megalith.models.fusion import FusionSettings, ModalityDropout, PeriodicEncoder, make_fusion
from megalith.models.logmel import AudioFrontEnd
from megalith.models.sequence import SequenceEncoderConfig, build_sequence_encoder

ImageBackboneFactory = Callable[[InputSpec], tuple[nn.Module, int]]
"""spec -> (module mapping normalised float (B, C, H, W) to (B, F), F)."""

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}

_DEFAULT_TEXT_EMBEDDING_DIM = 64
_DEFAULT_SEQUENCE_EMBEDDING_DIM = 32


def make_activation(name: str) -> nn.Module:
    """A fresh activation module by config name (relu, gelu, tanh, sigmoid)."""
    if name not in _ACTIVATIONS:
        raise ConfigError(f"model.activation: unknown '{name}'; known: {', '.join(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]()


def init_conv_kaiming(module: nn.Module) -> None:
    """Kaiming-normal init (fan_out, ReLU gain) for every conv; batch norms start at (1, 0)."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)


def image_shape(spec: InputSpec) -> tuple[int, int, int]:
    """(C, H, W) of an image input, checked."""
    if len(spec.shape) != 3 or min(spec.shape) < 1:
        raise ConfigError(f"inputs.{spec.name}: image shape must be (C, H, W), got {spec.shape}")
    channels, height, width = spec.shape
    return channels, height, width


class RecomputedBlock(nn.Module):
    """A block whose activations may be recomputed in the backward pass instead of kept.

    Subclasses implement `block_forward`; `train.activation_checkpointing: true` sets
    `recompute` on every such block, trading compute for memory. Gradients are unchanged;
    batch-norm running statistics see the recomputed forward as a second update.
    """

    recompute = False

    def block_forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.recompute and self.training and torch.is_grad_enabled():
            return checkpoint(self.block_forward, x, use_reentrant=False)
        return self.block_forward(x)


def enable_activation_checkpointing(model: nn.Module) -> int:
    """Recompute the activations of every block that can (a RecomputedBlock, a Transformer
    block: their classes define `recompute`) in backward; returns how many blocks."""
    blocks = [m for m in model.modules() if hasattr(type(m), "recompute")]
    for block in blocks:
        setattr(block, "recompute", True)  # noqa: B010 - any module class that defines it
    return len(blocks)


# -----------------------------------------------------------------------------
# input encoders: one per input, each maps its tensor to (B, out_features)


class InputEncoder(nn.Module):
    """Base of the input encoders: `out_features` is the width of what forward returns."""

    out_features: int


class ScalarEncoder(InputEncoder):
    """number / binary: float (B,) -> (B, 1)."""

    out_features = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float().unsqueeze(-1)  # (B, 1)


class CategoryEncoder(InputEncoder):
    """category: int64 (B,) -> learned embedding (B, D); index 0 (unknown) is an ordinary row."""

    def __init__(self, spec: InputSpec) -> None:
        super().__init__()
        vocab_size = _checked_vocab_size(spec)
        # the data side normally fills embedding_dim; this mirrors its default rule
        dim = spec.embedding_dim or min(32, round(1.6 * vocab_size**0.56))
        self.embedding = nn.Embedding(vocab_size, dim)
        self.out_features = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(x)  # (B, D)


class TextEncoder(InputEncoder):
    """text: int64 (B, L) -> token embeddings (B, L, D) -> the feature's sequence encoder (B, F).

    With token weights (`idf: true`), the bag is TF-IDF-like instead: the embeddings weighted by
    each token's inverse document frequency, divided by the L2 norm of those weights. The layer
    after it then acts on (a learned projection of) the TF-IDF vector.
    """

    token_weights: torch.Tensor  # (V,) buffer, when weighted

    def __init__(self, spec: InputSpec) -> None:
        super().__init__()
        dim = spec.embedding_dim or _DEFAULT_TEXT_EMBEDDING_DIM
        config = spec.encoder or SequenceEncoderConfig()
        length = spec.shape[0] if spec.shape else 512
        self.embedding = nn.Embedding(_checked_vocab_size(spec), dim, padding_idx=0)
        self.sequence = build_sequence_encoder(config, dim, length, f"inputs.{spec.name}.encoder")
        self.out_features = self.sequence.out_features
        self.weighted = bool(spec.token_weights)
        if self.weighted:
            if config.kind != "bag" or len(spec.token_weights) != spec.vocab_size:
                raise ConfigError(
                    f"inputs.{spec.name}: idf weighting needs the bag encoder (encoder: bag)"
                )
            weights = torch.tensor(spec.token_weights, dtype=torch.float32)
            self.register_buffer("token_weights", weights, persistent=False)  # from the spec

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.from_embeddings(self.embedding(tokens), tokens)

    def from_embeddings(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The rest of forward, given the token embeddings x (B, L, D) of `tokens` (B, L); the
        explain stage attributes to x."""
        mask = tokens != 0  # (B, L)
        if not self.weighted:
            return self.sequence(x, mask)  # (B, F)
        weights = self.token_weights[tokens] * mask  # (B, L); padding weighs 0
        norm = weights.square().sum(dim=1, keepdim=True).sqrt().clamp(min=1e-6)  # (B, 1)
        return (x * weights.unsqueeze(-1)).sum(dim=1) / norm  # (B, D)


class SequenceValuesEncoder(InputEncoder):
    """sequence: float (B, L, 2) -> each step's value projected to D -> sequence encoder (B, F)."""

    def __init__(self, spec: InputSpec) -> None:
        super().__init__()
        dim = spec.embedding_dim or _DEFAULT_SEQUENCE_EMBEDDING_DIM
        config = spec.encoder or SequenceEncoderConfig(kind="lstm")
        length = spec.shape[0] if spec.shape else 512
        # the nonlinearity lets `bag` see how values are distributed, not only their mean
        self.project = nn.Sequential(nn.Linear(1, dim), nn.GELU())
        self.sequence = build_sequence_encoder(config, dim, length, f"inputs.{spec.name}.encoder")
        self.out_features = self.sequence.out_features

    def forward(self, steps: torch.Tensor) -> torch.Tensor:
        mask = steps[..., 1] > 0.5  # (B, L), True = real step
        # padding steps become zero vectors, as text padding does, so a convolution sees zeros
        x = self.project(steps[..., :1].float()) * mask.unsqueeze(-1)  # (B, L, D)
        return self.sequence(x, mask)  # (B, F)


class ImageEncoder(InputEncoder):
    """image: uint8 (B, C, H, W) -> normalised float -> the family's backbone -> (B, F)."""

    mean: torch.Tensor  # (1, C, 1, 1) buffer
    std: torch.Tensor  # (1, C, 1, 1) buffer

    def __init__(self, spec: InputSpec, backbone_factory: ImageBackboneFactory) -> None:
        super().__init__()
        channels, _, _ = image_shape(spec)
        mean = spec.mean or (0.0,) * channels
        std = spec.std or (1.0,) * channels
        if len(mean) != channels or len(std) != channels:
            raise ConfigError(
                f"inputs.{spec.name}: mean / std need one value per channel ({channels})"
            )
        # derived from the spec, so not saved with the weights (persistent=False)
        mean_t = torch.tensor(mean, dtype=torch.float32).view(1, channels, 1, 1)
        std_t = torch.tensor([max(s, 1e-6) for s in std], dtype=torch.float32)
        self.register_buffer("mean", mean_t, persistent=False)
        self.register_buffer("std", std_t.view(1, channels, 1, 1), persistent=False)
        self.backbone, self.out_features = backbone_factory(spec)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        # .float() keeps the memory format, so channels_last input stays channels_last
        x = (pixels.float() / 255.0 - self.mean) / self.std  # (B, C, H, W)
        return self.backbone(x)  # (B, F)


class AudioEncoder(InputEncoder):
    """audio: float32 waveform (B, S) -> normalised log-mel (B, 1, n_mels, frames), augmented in
    training -> the family's image backbone -> (B, F)."""

    def __init__(self, spec: InputSpec, backbone_factory: ImageBackboneFactory) -> None:
        super().__init__()
        settings = spec.log_mel
        if settings is None or len(spec.shape) != 1:
            raise ConfigError(f"inputs.{spec.name}: audio needs log_mel settings and (samples,)")
        if len(spec.mean) not in (0, settings.n_mels) or len(spec.std) != len(spec.mean):
            raise ConfigError(f"inputs.{spec.name}: mean / std need one value per mel bin")
        self.front_end = AudioFrontEnd(settings, spec.mean, spec.std, spec.augment)
        image = dataclasses.replace(
            spec, type="image", shape=(1, settings.n_mels, settings.frames(spec.shape[0]))
        )
        self.backbone, self.out_features = backbone_factory(image)
        self.hop_length, self.variable_length = settings.hop_length, spec.variable_length
        self.samples = spec.shape[0]
        self.takes_frames = bool(getattr(self.backbone, "takes_frames", False))
        if spec.variable_length and not self.takes_frames:
            raise ConfigError(
                f"inputs.{spec.name}: variable_length needs a backbone that masks the padding; "
                "use model.arch cnn or crnn, or set variable_length: false"
            )

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if self.variable_length and self._unmasked_norm():
            wave = pad_to_length(wave, self.samples)  # (B, S) as fitted, as the graph takes it
        elif self.variable_length:
            wave = trim_to_longest(wave)  # (B, S') up to the batch's longest clip
        if not self.takes_frames:
            return self.backbone(self.front_end(wave))  # (B, 1, M, T) -> (B, F)
        frames = clip_frames(wave, self.hop_length)  # (B,)
        return self.backbone(self.front_end(wave), frames)  # (B, 1, M, T), (B,) -> (B, F)

    def _unmasked_norm(self) -> bool:
        """Whether the backbone normalises over the padding too: GroupNorm (BatchNorm under
        train.privacy) counts every frame, so a clip's output depends on the batch's length; the
        batch is then padded to the fitted length, which the exported graph takes, so a clip
        predicts the same alone, batched or exported."""
        return any(isinstance(module, nn.GroupNorm) for module in self.backbone.modules())


def _checked_vocab_size(spec: InputSpec) -> int:
    if spec.vocab_size < 1:
        raise ConfigError(f"inputs.{spec.name}: {spec.type} input needs vocab_size >= 1")
    return spec.vocab_size


def make_encoder(spec: InputSpec, backbone_factory: ImageBackboneFactory) -> InputEncoder:
    """The encoder for one input by its type; it exposes `out_features`."""
    if spec.type in ("number", "binary"):
        return ScalarEncoder()
    if spec.type == "category":
        return CategoryEncoder(spec)
    if spec.type == "text":
        return TextEncoder(spec)
    if spec.type == "image":
        return ImageEncoder(spec, backbone_factory)
    if spec.type == "sequence":
        return SequenceValuesEncoder(spec)
    if spec.type == "audio":
        return AudioEncoder(spec, backbone_factory)
    raise ConfigError(
        f"inputs.{spec.name}: type '{spec.type}' is not supported by this model.arch; "
        "supported: number, binary, category, text, image, sequence, audio"
    )


# -----------------------------------------------------------------------------
# combiner and heads


def make_combiner(
    in_features: int, hidden: Sequence[int], activation: str, dropout: float, batch_norm: bool
) -> nn.Sequential:
    """Linear -> [BatchNorm1d] -> activation -> [Dropout] per hidden width; empty = identity."""
    layers: list[nn.Module] = []
    width = in_features
    for out in hidden:
        layers.append(nn.Linear(width, out))
        if batch_norm:
            layers.append(nn.BatchNorm1d(out))
        layers.append(make_activation(activation))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = out
    return nn.Sequential(*layers)


class OutputHead(nn.Module):
    """category: logits (B, K); binary: one logit (B,); number: one value (B,)."""

    def __init__(self, spec: OutputSpec, in_features: int) -> None:
        super().__init__()
        if spec.type == "category":
            if spec.num_classes < 2:
                raise ConfigError(f"outputs.{spec.name}: a category output needs >= 2 classes")
            self.linear = nn.Linear(in_features, spec.num_classes)
        elif spec.type in ("binary", "number"):
            self.linear = nn.Linear(in_features, 1)
        else:
            raise ConfigError(
                f"outputs.{spec.name}: type '{spec.type}' is not supported by this model.arch; "
                "supported: category, binary, number"
            )
        self.squeeze = spec.type != "category"  # fixed at build time: no branch on data

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x)  # (B, K) or (B, 1)
        return y.squeeze(-1) if self.squeeze else y


# -----------------------------------------------------------------------------
# the model


class FeatureModel(nn.Module):
    """Encoders by input type -> concat or transformer fusion (megalith.models.fusion) ->
    combiner MLP -> one head per output.

    Submodules live in lists, not dicts keyed by name, because column names may hold '.'.
    """

    def __init__(
        self,
        inputs: Sequence[InputSpec],
        outputs: Sequence[OutputSpec],
        image_backbone: ImageBackboneFactory,
        hidden: Sequence[int] = (),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        fusion: FusionSettings | None = None,
    ) -> None:
        super().__init__()
        if not inputs or not outputs:
            raise ConfigError("a model needs at least one input and one output")
        fusion = fusion or FusionSettings()
        self.input_names = [spec.name for spec in inputs]
        self.output_names = [spec.name for spec in outputs]
        self.modality_dropout = ModalityDropout(
            inputs, fusion.modality_dropout, fusion.modality_dropout_by_input
        )
        # each image input gets its own backbone: the factory is called once per input
        encoders: list[InputEncoder | PeriodicEncoder] = [
            PeriodicEncoder(fusion.frequencies, fusion.sigma, fusion.token_dim)
            if spec.type == "number" and fusion.number_embedding == "periodic"
            else make_encoder(spec, image_backbone)
            for spec in inputs
        ]
        self.encoders = nn.ModuleList(encoders)
        widths = [encoder.out_features for encoder in encoders]
        self.fusion = make_fusion(widths, fusion)
        self.embedding_dropout = nn.Dropout(fusion.embedding_dropout)
        combined = self.fusion.out_features
        self.combiner = make_combiner(combined, hidden, activation, dropout, batch_norm)
        width = hidden[-1] if hidden else combined
        self.heads = nn.ModuleList(OutputHead(spec, width) for spec in outputs)

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        inputs = self.modality_dropout(inputs)  # identity in eval mode
        encoded = [
            encoder(inputs[name])
            for name, encoder in zip(self.input_names, self.encoders, strict=True)
        ]  # each (B, F_i)
        return self.decode_features(encoded)

    def decode_features(self, encoded: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """The outputs by name from each input's encoded features (B, F_i), in input order."""
        x = self.combiner(self.embedding_dropout(self.fusion(encoded)))  # (B, H)
        return {name: head(x) for name, head in zip(self.output_names, self.heads, strict=True)}
