"""The tensor contract of a small variable-length audio input, shared by the model, privacy and
explain tests of audio runs.

Usage:
    from audio_specs import CLIP
    model = build_model(CRNNConfig(channels=[8], gru_hidden=8), [CLIP], outputs)
"""

from __future__ import annotations

from megalith.data.features.logmel import LogMelSettings
from megalith.data.specs import InputSpec

LOG_MEL = LogMelSettings(8000, 128, 80, 16, 0.0, 4000.0, "slaney", 1e-6)
"""8 kHz audio, 128-sample windows every 80 samples (10 ms), 16 mel bands up to 4 kHz."""
CLIP = InputSpec(
    "clip",
    "audio",
    shape=(2400,),
    mean=(-5.0,) * 16,
    std=(3.0,) * 16,
    log_mel=LOG_MEL,
    variable_length=True,
)
"""An input 'clip' of up to 0.3 s at 8 kHz (2,400 samples), each clip at its own length."""
