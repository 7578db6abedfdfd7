"""The report's speech section: what a recognizer writes on the test split, utterance by utterance.

Shows reference against hypothesis for the worst and the best utterances (by their WER, ties by
the number of word errors), and, when the table has a column named `speaker`, the WER of each
speaker (the errors of their utterances over their reference words), worst first: a recognizer
that fails one voice shows it here while its overall WER hides it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from megalith.evaluate.speech import utterance_errors

if TYPE_CHECKING:
    import pandas as pd

    from megalith.run import Run

SPEAKER_COLUMN = "speaker"
"""The column whose values group the per-speaker breakdown, when the table has it."""
_SHOWN = 5
"""Utterances shown at each end (worst and best)."""


@dataclass(frozen=True)
class Utterance:
    """One test row as the report shows it."""

    reference: str
    hypothesis: str
    errors: int
    words: int
    wer: float
    speaker: str = ""


@dataclass(frozen=True)
class SpeechSection:
    """Worst and best utterances, and the per-speaker WER table (empty without a speaker column)."""

    worst: list[Utterance]
    best: list[Utterance]
    speakers: list[tuple[str, int, int, float]]
    """(speaker, utterances, reference words, WER), worst first."""
    decoding: str = "greedy CTC"
    """How the hypotheses were decoded (the run's model.beam_size and model.lm)."""


def decoding_words(model_config: Any) -> str:
    """The run's decoding as the report names it: greedy CTC, or the beam and its GPT."""
    beam_size = getattr(model_config, "beam_size", 1)
    from megalith.models.ctc_decoding import decoding_settings, joint_ctc_weight

    joint = joint_ctc_weight(
        decoding_settings(model_config), getattr(model_config, "ctc_weight", 1.0)
    )
    if joint < 1:  # a hybrid model's own decoding (megalith.models.joint_decoding)
        return f"joint CTC/attention beam search of {beam_size} (CTC weight {joint:g})"
    if beam_size == 1:
        return "greedy CTC"
    words = f"CTC prefix beam search of {beam_size}"
    lm = getattr(model_config, "lm", None)
    if lm is not None:
        words += f" + GPT shallow fusion ({Path(lm).name}, lm_weight {model_config.lm_weight:g})"
    return words


def speech_section(run: Run, frame: pd.DataFrame, base_dir: Path | None) -> SpeechSection | None:
    """The section for `frame` (the test split's rows); None when it has no rows."""
    target = run.config.outputs[0].name
    if len(frame) == 0 or target not in frame.columns:
        return None
    written = run.predict(frame.drop(columns=[target]), base_dir=base_dir)[target]
    references = [str(text) for text in frame[target].loc[written.index]]
    hypotheses = [str(text) for text in written]
    speakers = (
        [str(s) for s in frame[SPEAKER_COLUMN].loc[written.index]]
        if SPEAKER_COLUMN in frame.columns
        else [""] * len(references)
    )
    scored = [
        Utterance(ref, hyp, int(e["errors"]), int(e["words"]), float(e["wer"]), who)
        for ref, hyp, e, who in zip(
            references, hypotheses, utterance_errors(hypotheses, references), speakers, strict=True
        )
    ]
    ranked = sorted(scored, key=lambda u: (u.wer, u.errors), reverse=True)
    shown = min(_SHOWN, len(ranked) // 2 or 1)
    return SpeechSection(
        worst=ranked[:shown],
        best=ranked[::-1][:shown],
        speakers=_by_speaker(scored) if SPEAKER_COLUMN in frame.columns else [],
        decoding=decoding_words(run.config.model),
    )


def _by_speaker(scored: list[Utterance]) -> list[tuple[str, int, int, float]]:
    totals: dict[str, list[int]] = {}
    for u in scored:
        entry = totals.setdefault(u.speaker, [0, 0, 0])
        entry[0] += 1
        entry[1] += u.words
        entry[2] += u.errors
    rows = [(who, n, words, errors / max(words, 1)) for who, (n, words, errors) in totals.items()]
    return sorted(rows, key=lambda row: row[3], reverse=True)
