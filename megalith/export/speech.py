"""What a speech recognizer's bundle adds to bundle.json: task asr and the `ctc` entry
(megalith.runtime.speech), so the torch-free runtime reads long recordings and decodes them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from megalith.export import Run


def add_speech_description(run: Run, description: dict[str, Any]) -> None:
    """Mark bundle.json of a `model.arch: asr` run as task asr, with its `ctc` entry, and say
    that its output is CTC frame logits."""
    from megalith.models.asr import BLANK
    from megalith.models.ctc_decoding import decoding_settings
    from megalith.runtime.speech import TASK, ctc_description
    from megalith.transcribe.decode import speech_windows

    windows = speech_windows(run.preprocessor)
    description["task"] = TASK
    description["ctc"] = ctc_description(
        blank=BLANK,
        sample_rate=windows.sample_rate,
        window=windows.window,
        frame=windows.frame,
        beam_size=decoding_settings(run.config.model).beam_size,
    )
    for entry in description["outputs"]:
        entry.pop("end_id", None)
        entry["graph_output"] = f"CTC logits (batch, frames, vocabulary); blank id {BLANK}"
