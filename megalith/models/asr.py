"""Speech recognition with CTC: one audio input -> one text output (`model.arch: asr`).

    waveform (B, S) ─► log-mel, normalised per bin [+ SpecAugment when training] (B, M, T)
    ─► two 3x3 convolutions of stride 2: x4 fewer frames (B, C, M/4, T/4) ─► linear (B, T', D)
    ─► + sinusoidal positions ─► N Transformer blocks (padding frames masked as keys)
    ─► linear CTC head: per-frame logits (B, T', V) over the output tokenizer's ids

CTC (A. Graves et al., "Connectionist Temporal Classification: Labelling Unsegmented Sequence
Data with Recurrent Neural Networks", ICML 2006) lets the model emit one token or the *blank* per
frame; a transcript is read off by merging repeated tokens and dropping blanks. The blank is id 0,
the tokenizer's PAD, which no transcript contains; BOS / EOS (2 / 3) are in the head but never
targets, so the model learns never to emit them. The convolutional subsampling follows the
Transformer acoustic models of ESPnet (S. Karita et al., "A Comparative Study on Transformer vs RNN
in Speech Applications", ASRU 2019).

Real lengths are *derived* from the waveform, not carried as an extra tensor: clips are zero-padded
at the end to `duration` (megalith.data.features.audio), so a clip's length is the position after
its last non-zero sample (trailing digital silence counts as padding, which is harmless). Frames
past a clip's end are masked out of attention, and their logits are replaced by a certain blank
(0 for blank, -1e4 for every other id), so CTC over all T' frames equals CTC over the real frames
(every alignment must emit blanks there, at probability 1) and greedy decoding emits nothing there.
The exported graph therefore needs the waveform alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from megalith.data.rows import describe_rows
from megalith.data.specs import InputSpec, OutputSpec
from megalith.data.tensors import TensorTable
from megalith.data.tokenizers import BOS, EOS, PAD
from megalith.errors import ConfigError, DataError
from megalith.models.attention import Positions, TransformerBlock, check_heads
from megalith.models.ctc_decoding import CTCDecoding
from megalith.models.logmel import AudioFrontEnd
from megalith.models.registry import register_model
from megalith.models.seq2seq import TextDecoder

BLANK = PAD
"""The CTC blank id: PAD (0), which never occurs inside a transcript."""
SUBSAMPLING = 4
"""Frames of log-mel per frame of the acoustic encoder (two stride-2 convolutions)."""
_NOT_BLANK = -1e4
"""Logit of every non-blank id on a padding frame: exp(-1e4) is 0 in every float type."""
MEMORY = ":memory"
"""A hybrid model's output key suffix for its encoder output (B, T', D)."""
ATTENTION = ":attention"
"""A hybrid model's output key suffix for its teacher-forced decoder logits (B, L+1, V)."""
DECODER_CLIPS = 8
"""A hybrid's decoder positions cover the transcript of this many clips (long recordings)."""


class ASRConfig(CTCDecoding):
    """A CTC speech recognizer: log-mel -> x4 conv subsampling -> Transformer -> CTC head; its
    decoding keys (beam_size, lm, lm_weight, ...) are megalith.models.ctc_decoding's."""

    arch: Literal["asr"] = "asr"
    dim: int = Field(144, gt=0)
    """Width of the encoder's frame vectors."""
    layers: int = Field(4, gt=0)
    """Transformer blocks in the acoustic encoder."""
    heads: int = Field(4, gt=0)
    """Attention heads per block; dim must be a multiple."""
    channels: int = Field(64, gt=0)
    """Output channels of the two subsampling convolutions."""
    dropout: float = Field(0.1, ge=0, lt=1)
    """Dropout on the subsampled frames, attention and block outputs."""
    ctc_weight: float = Field(1.0, gt=0, le=1)
    """Weight of the CTC loss; below 1 the model also has an attention decoder, trained
    jointly: loss = ctc_weight * CTC + (1 - ctc_weight) * decoder cross-entropy (hybrid
    CTC/attention, Watanabe et al. 2017). 1 is a CTC model alone."""
    decoder_layers: int | None = Field(None, gt=0)
    """Transformer decoder blocks of a hybrid model (ctc_weight below 1); 2 is a good start."""

    @model_validator(mode="after")
    def _decoder_with_hybrid(self) -> ASRConfig:
        if self.ctc_weight < 1 and self.decoder_layers is None:
            raise ValueError(
                f"decoder_layers: ctc_weight {self.ctc_weight} trains an attention decoder "
                "beside the CTC head; give its size, e.g. decoder_layers: 2"
            )
        if self.ctc_weight == 1 and self.decoder_layers is not None:
            raise ValueError(
                "decoder_layers: a decoder is trained only when ctc_weight is below 1 (0.3 is "
                "the usual hybrid); lower ctc_weight or drop decoder_layers"
            )
        if (self.decode_ctc_weight or 1.0) < 1 and self.ctc_weight == 1:
            raise ValueError(
                "decode_ctc_weight: attention decoding needs the decoder of a hybrid model; "
                "lower ctc_weight (e.g. 0.3, with decoder_layers: 2) or drop decode_ctc_weight"
            )
        return self


def subsampled_frames(frames: torch.Tensor | int) -> torch.Tensor | int:
    """Frames after the two stride-2 convolutions (kernel 3, padding 1): ceil(ceil(T / 2) / 2)."""
    for _ in range(2):
        frames = (frames + 1) // 2
    return frames


def clip_frames(wave: torch.Tensor, hop_length: int) -> torch.Tensor:
    """int64 (B,): each zero-padded clip's real encoder frames (at least 1), from its last
    non-zero sample; the log-mel of n samples has 1 + n // hop_length frames (centred)."""
    position = torch.arange(1, wave.shape[1] + 1, device=wave.device)  # (S,)
    samples = ((wave != 0) * position).amax(dim=1)  # (B,) 0 for an all-silent clip
    return torch.as_tensor(subsampled_frames(1 + samples // hop_length))


class ConvSubsampling(nn.Module):
    """(B, 1, M, T) spectrogram -> (B, ceil(T / 4), dim): two 3x3 conv + ReLU of stride 2."""

    def __init__(self, n_mels: int, channels: int, dim: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(1, channels, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.out = nn.Linear(channels * int(subsampled_frames(n_mels)), dim)

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        x = self.convs(spectrogram)  # (B, C, M', T')
        return self.out(x.permute(0, 3, 1, 2).flatten(2))  # (B, T', C * M') -> (B, T', D)


class ASR(TextDecoder, nn.Module):
    """forward({audio: waveform (B, S)}) -> {text: CTC logits (B, T', V)}, T' = frames / 4.

    Logits, not log-probabilities: `ctc_loss` and `greedy_ctc` apply log_softmax / argmax.
    A hybrid model (ctc_weight < 1) also returns the encoder output under `text` + MEMORY
    (B, T', D), what its attention decoder (megalith.models.seq2seq.TextDecoder) reads, and,
    when the inputs hold decoder ids under `text` (B, L+1: BOS ... , teacher forcing,
    `attention_inputs`), the decoder's next-token logits under `text` + ATTENTION (B, L+1, V).
    """

    def __init__(self, config: ASRConfig, audio: InputSpec, text: OutputSpec) -> None:
        super().__init__()
        check_heads(config.dim, config.heads, "model.dim")
        settings = audio.log_mel
        self.audio_name, self.name = audio.name, text.name
        self.hop_length, self.samples = settings.hop_length, int(audio.shape[0])
        self.front_end = AudioFrontEnd(settings, audio.mean, audio.std, audio.augment)
        self.subsample = ConvSubsampling(settings.n_mels, config.channels, config.dim)
        self.max_frames = int(subsampled_frames(settings.frames(audio.shape[0])))
        self.positions = Positions("sinusoidal", self.max_frames, config.dim)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(config.dim, config.heads, config.dropout) for _ in range(config.layers)
        )
        self.norm = nn.LayerNorm(config.dim)
        self.head = nn.Linear(config.dim, text.num_classes)
        padding_logits = torch.full((text.num_classes,), _NOT_BLANK)
        padding_logits[BLANK] = 0.0
        self.register_buffer("padding_logits", padding_logits, persistent=False)
        self.ctc_weight = config.ctc_weight
        self.hybrid = config.ctc_weight < 1
        if self.hybrid:
            self._build_attention_decoder(config, text)

    padding_logits: torch.Tensor  # (V,) buffer

    def _build_attention_decoder(self, config: ASRConfig, text: OutputSpec) -> None:
        # sinusoidal positions cost no weights: room for the transcripts of several clips
        # (a long recording's stitched windows), a CTC transcript having at most one token a frame
        self.max_tokens = DECODER_CLIPS * max(self.max_frames, text.shape[0] if text.shape else 1)
        layers = config.decoder_layers or 1
        dim, heads, dropout = config.dim, config.heads, config.dropout
        self.build_decoder(text.num_classes, self.max_tokens + 1, dim, heads, dropout, layers)
        self.scale = dim**0.5
        nn.init.normal_(self.target_embedding.weight, std=dim**-0.5)  # as seq2seq: tied output
        with torch.no_grad():
            self.target_embedding.weight[PAD].zero_()

    def encode(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Waveforms (B, S) -> encoder output (B, T', D) and its real frames, bool (B, T')."""
        # speed perturbation (training) changes real lengths: read them after it, but before
        # the rest of augmentation, whose noise fills the padding
        wave = self.front_end.perturb_speed(wave, self.samples)
        lengths = clip_frames(wave, self.hop_length)  # (B,)
        x = self.subsample(self.front_end(wave, speed=False))  # (B, T', D)
        real = torch.arange(x.shape[1], device=x.device) < lengths.unsqueeze(1)  # (B, T')
        x = self.drop(self.positions(x))
        mask = real[:, None, None, :]  # (B, 1, 1, T'): keys a frame may attend to
        for block in self.blocks:
            x, _ = block(x, mask=mask)
        return self.norm(x), real

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        memory, real = self.encode(inputs[self.audio_name])
        logits = self.head(memory)  # (B, T', V)
        padding = self.padding_logits.to(logits.dtype)
        outputs = {self.name: torch.where(real.unsqueeze(-1), logits, padding)}
        if self.hybrid:
            outputs[self.name + MEMORY] = memory
            if self.name in inputs:  # teacher forcing: the transcript so far, BOS first
                mask = real[:, None, None, :]
                outputs[self.name + ATTENTION], _ = self.decode(inputs[self.name], memory, mask)
        return outputs


def ctc_targets(framed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Text targets (B, L+2) framed BOS ... EOS then PAD -> labels (B, L+1) and lengths (B,).

    Labels are left-aligned (BOS dropped); CTC reads the first `length` of each row."""
    labels = framed[:, 1:]
    real = (labels != PAD) & (labels != EOS) & (labels != BOS)
    return labels, real.sum(dim=1)


def ctc_loss(
    logits: torch.Tensor, framed: torch.Tensor, tokens: torch.Tensor | None = None
) -> torch.Tensor:
    """CTC negative log-likelihood summed over the batch, divided by its real target tokens
    (or by `tokens`, the step's token share, as text losses are; megalith.training.losses).

    Args:
        logits: (B, T', V) from `ASR.forward`; padding frames are certain blanks, so every row
            uses all T' frames.
        framed: (B, L+2) text targets framed BOS ... EOS, PAD-padded.
    Rows CTC cannot align (more labels than frames) give 0, not infinity (zero_infinity);
    training refuses such rows before step 0 (`check_ctc_fits`).
    """
    log_probs = logits.float().log_softmax(dim=-1).transpose(0, 1)  # (T', B, V)
    labels, label_lengths = ctc_targets(framed)
    frames = torch.full((logits.shape[0],), logits.shape[1], dtype=torch.long)
    nll = F.ctc_loss(
        log_probs,
        labels,
        frames.to(logits.device),
        label_lengths,
        blank=BLANK,
        reduction="sum",
        zero_infinity=True,
    )
    divisor = tokens if tokens is not None else label_lengths.sum().clamp(min=1)
    return nll / divisor


def greedy_ctc(logits: torch.Tensor) -> torch.Tensor:
    """Best-path decoding: the argmax id per frame, repeats merged, blanks dropped.

    (B, T', V) logits -> int64 (B, L) ids, left-aligned and PAD-padded (L >= 1)."""
    best = logits.argmax(dim=-1).cpu()  # (B, T')
    previous = F.pad(best[:, :-1], (1, 0), value=BLANK)
    keep = (best != BLANK) & (best != previous)  # a new token: not blank, not a repeat
    lengths = keep.sum(dim=1)  # (B,)
    width = int(lengths.max()) if len(best) else 0
    out = torch.full((best.shape[0], max(width, 1)), PAD, dtype=torch.long)
    rows, _ = keep.nonzero(as_tuple=True)
    starts = torch.cumsum(lengths, 0) - lengths  # (B,) where each row's tokens begin
    out[rows, torch.arange(len(rows)) - starts[rows]] = best[keep]
    return out


def ctc_frames_needed(framed: torch.Tensor) -> torch.Tensor:
    """int64 (B,): the frames CTC needs to emit each framed target (B, L+2): one per label,
    plus a blank between two equal labels in a row ("ee" cannot be told from "e" otherwise)."""
    labels, lengths = ctc_targets(framed)
    real = torch.arange(labels.shape[1]) < lengths.unsqueeze(1)  # (B, L+1)
    repeats = (labels[:, 1:] == labels[:, :-1]) & real[:, 1:]
    return lengths + repeats.sum(dim=1)


def check_ctc_fits(table: TensorTable, audio: InputSpec, text: str, where: str) -> None:
    """Refuse rows whose transcript has more CTC labels than their clip has encoder frames:
    CTC cannot emit them, and their loss would be infinite.

    Raises:
        DataError: naming the rows, the frames each needs and has, and what to change.
    """
    framed = table.targets.get(text)
    if framed is None or len(table) == 0:
        return
    has = clip_frames(table.inputs[audio.name], audio.log_mel.hop_length)
    needs = ctc_frames_needed(framed)
    short = (needs > has).nonzero().flatten().tolist()
    if not short:
        return
    first = short[0]
    raise DataError(
        f"{where}: column '{text}', {describe_rows(table.rows[short])}: the transcript needs "
        f"{int(needs[first])} CTC frames but its clip gives {int(has[first])} (one per "
        f"{SUBSAMPLING * audio.log_mel.hop_length} samples after x{SUBSAMPLING} subsampling); "
        f"if clips are cut, raise inputs.{audio.name}.duration; otherwise give more frames per "
        f"second with a smaller inputs.{audio.name}.hop_length, or fewer tokens with "
        f"outputs.{text}.tokenizer bpe or word."
    )


def check_asr_features(inputs: Sequence[Any], outputs: Sequence[Any]) -> None:
    """The config's inputs and outputs fit `model.arch: asr`: one audio input, one text output
    with a tokenizer of its own (char, bpe, wordpiece or word).

    Raises:
        ValueError: naming the field (the config's validation turns it into a ConfigError).
    """
    audio = [f.name for f in inputs if f.type == "audio"]
    texts = [f for f in outputs if f.type == "text"]
    if len(inputs) != 1 or len(audio) != 1:
        got = ", ".join(f"{f.name} ({f.type})" for f in inputs) or "none"
        raise ValueError(
            f"inputs: model.arch asr reads exactly one input of type audio (got {got}); "
            "list the column of sound file paths as `{name: audio, type: audio}`"
        )
    if len(outputs) != 1 or len(texts) != 1:
        got = ", ".join(f"{f.name} ({f.type})" for f in outputs) or "none"
        raise ValueError(
            f"outputs: model.arch asr writes exactly one output of type text, the transcript "
            f"(got {got}); list it as `{{name: text, type: text, tokenizer: char}}`"
        )
    if texts[0].tokenizer == "pretrained":
        raise ValueError(
            f"outputs.{texts[0].name}.tokenizer: asr fits its own tokenizer on the transcripts; "
            "choose char (the default for speech), bpe, wordpiece or word"
        )


@register_model("asr")
def build_asr(config: ASRConfig, inputs: Sequence[InputSpec], outputs: Sequence[OutputSpec]) -> ASR:
    """The recognizer reads the one audio input and spells the one text output.

    Raises:
        ConfigError: not exactly one audio input and one text output.
    """
    audio = [spec for spec in inputs if spec.type == "audio"]
    texts = [spec for spec in outputs if spec.type == "text"]
    if len(inputs) != 1 or len(audio) != 1 or len(outputs) != 1 or len(texts) != 1:
        raise ConfigError(
            "model.arch asr reads one audio input and writes one text output "
            f"(got inputs: {[s.type for s in inputs]}, outputs: {[s.type for s in outputs]})"
        )
    if math.prod(audio[0].shape) < 1:
        raise ConfigError(f"inputs.{audio[0].name}: an audio input needs a length in samples")
    return ASR(config, audio[0], texts[0])
