"""What a model needs to know about its inputs and outputs, derived from the fitted preprocessing.

Models are built from these specs alone, so a model file never reads data or the preprocessor.

Tensor contract per input type (B = batch size):
  number    float32 (B,)          standardised / scaled as configured
  binary    float32 (B,)          0.0 or 1.0
  category  int64   (B,)          0 = unknown or missing, 1..vocab_size-1 = known values
  text      int64   (B, L)        0 = padding, 1 = unknown, 2 / 3 = begin / end, 4.. = vocabulary
  image     uint8   (B, C, H, W)  raw pixels; the model normalises with `mean` / `std` (0-1 scale)
  audio     float32 (B, S)        mono waveform at `log_mel.sample_rate`, S = shape[0] samples,
                                  zero-padded at the end; the model computes the log-mel
                                  spectrogram (B, 1, n_mels, frames) and normalises each mel bin
                                  with `mean` / `std`
  sequence  float32 (B, L, 2)     [..., 0] standardised value, [..., 1] 1.0 = real step, 0.0 =
                                  padding (value 0); right-padded, longer rows keep their last L

Targets per output type:
  category  int64   (B,)          class index 0..num_classes-1
  binary    float32 (B,)          0.0 or 1.0
  number    float32 (B,)          standardised with the train mean / std
  text      int64   (B, L)        seq2seq: BOS, tokens, EOS, then 0; a language model: a window
                                  of the corpus, the token after each input position

Model outputs per output type: category logits (B, num_classes); binary logit (B,); number (B,);
text: next-token logits (B, L, vocab_size), num_classes being the vocabulary size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class InputSpec:
    """One input as the model sees it."""

    name: str
    type: str
    vocab_size: int = 0
    """category / text: number of indices, reserved ones included."""
    shape: tuple[int, ...] = ()
    """image: (C, H, W); text: (L,); sequence: (L, 2); audio: (samples,)."""
    mean: tuple[float, ...] = ()
    """image: per-channel mean on a 0-1 scale; audio: per-mel-bin mean of the train log-mels."""
    std: tuple[float, ...] = ()
    """image: per-channel standard deviation on a 0-1 scale; audio: per mel bin."""
    embedding_dim: int = 0
    """category / text: embedding size the feature asks for; sequence: width of each step."""
    token_weights: tuple[float, ...] = ()
    """text with idf: one weight per token id (the inverse document frequency on train)."""
    encoder: Any = None
    """text / sequence: the feature's SequenceEncoderConfig (how its steps become one vector)."""
    log_mel: Any = None
    """audio: the LogMelSettings of its front end (megalith.data.features.logmel)."""
    augment: Any = None
    """audio: the feature's AudioAugment config (train-time augmentation), or None."""
    variable_length: bool = False
    """audio: clips keep their own length; the model cuts each batch after its longest clip and
    masks the frames after each clip's end (megalith.models.audio_mask)."""


@dataclass(frozen=True)
class OutputSpec:
    """One output (target) as the model and the loss see it."""

    name: str
    type: str
    num_classes: int = 0
    """category: number of classes; binary: 2; number: 0; text: vocabulary size."""
    mean: float = 0.0
    """number: train mean of the target; predictions are `output * std + mean`."""
    std: float = 1.0
    """number: train standard deviation of the target."""
    shape: tuple[int, ...] = ()
    """text: (L,), the longest target row, begin / end ids included."""
    threshold: float = 0.5
    """binary: the probability above which a row is predicted positive (what predict applies)."""
    class_weights: tuple[float, ...] = ()
    """category / binary with class_weights balanced: one loss weight per class index
    (binary: negative, positive), n_rows / (n_classes * n_rows_of_class) on train."""
