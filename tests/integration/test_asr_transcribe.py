"""megalith transcribe and Run.transcribe on a trained recognizer, and its exported bundle: the
same transcripts from the CLI, the Python API, `predict` and the torch-free runtime, for clips
and for a recording several windows long."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import run_cli
from speech_runs import long_recording, tiny_recognizer

import megalith as mg
from megalith.errors import ConfigError, DataError, RunError
from megalith.runtime import load_bundle
from megalith.runtime.transcription import read_sound

pytestmark = pytest.mark.slow  # trains a recognizer and exports it (about 30 s on 2 busy cores)


@pytest.fixture(scope="module")
def recognizer(tmp_path_factory: pytest.TempPathFactory) -> tuple[mg.Run, list[Path]]:
    return tiny_recognizer(tmp_path_factory)


@pytest.fixture(scope="module")
def bundle_path(recognizer: tuple[mg.Run, list[Path]]) -> Path:
    run, _ = recognizer
    return run.export(run.path / "bundle", overwrite=True)


def test_transcripts_of_clips_equal_predict(recognizer: tuple[mg.Run, list[Path]]) -> None:
    run, clips = recognizer
    # predict reads a clip's first `duration` seconds; transcribe reads it all, so compare
    # with the clips cut to the model's window
    window = run.preprocessor.input_specs[0].shape[0]
    cut = [read_sound(clip, 8000, str(clip))[:window] for clip in clips]
    texts = run.transcribe(cut)
    assert len(texts) == len(clips) and all(texts), texts  # the run writes tokens
    assert texts == run.predict(clips_table(clips))["text"].tolist()
    beam = run.transcribe(cut, beam_size=4)
    assert len(beam) == len(clips) and all(isinstance(text, str) for text in beam)
    # a run whose config asks for a beam predicts and evaluates with it
    beamed = mg.load(run.path)
    beamed.config.model.beam_size = 4  # type: ignore[union-attr]
    assert beamed.predict(clips_table(clips))["text"].tolist() == beam
    greedy_scores, beam_scores = run.evaluate(), beamed.evaluate()
    assert greedy_scores["loss"] == pytest.approx(beam_scores["loss"])  # the same network
    assert beam_scores["cer"] >= 0 and "wer" in beam_scores


def clips_table(clips: list[Path]) -> pd.DataFrame:
    return pd.DataFrame({"audio": [str(clip) for clip in clips]})


def test_a_long_recording_is_cut_into_windows_and_stitched(
    recognizer: tuple[mg.Run, list[Path]],
) -> None:
    run, clips = recognizer
    window = run.preprocessor.input_specs[0].shape[0]  # samples the model reads at once
    silence = np.zeros(window, dtype=np.float32)
    # a silent window still has one real frame, where this run writes a token or nothing
    (silent,) = run.transcribe([silence])
    frame = 4 * run.preprocessor.input_specs[0].log_mel.hop_length  # samples per CTC frame
    for clip in clips:
        # the clip, cut to end two frames before the window does: the window's last frame,
        # which the next window's first frame replaces, is then padding in both
        wave = read_sound(clip, 8000, str(clip))[: window - 2 * frame]
        # the clip is in the second window: without overlap, each window is heard alone (the
        # clip as `predict` hears it) and ends in blanks, so the stitched transcript is the
        # windows' own in order, nothing dropped or repeated at their edges
        placed = np.concatenate([silence, wave, silence[len(wave) :], silence, silence])
        (alone,) = run.transcribe([wave])
        assert run.transcribe([placed], overlap=0.0) == [silent + alone + silent + silent]
    # with the default overlap, each window is heard with context: as many words, give or take
    long = np.concatenate([read_sound(clip, 8000, str(clip)) for clip in clips])
    (text,) = run.transcribe([long])
    assert text and len(text) >= len("".join(run.transcribe(clips))) // 2


def test_the_bundle_transcribes_as_the_run(
    recognizer: tuple[mg.Run, list[Path]], bundle_path: Path, tmp_path: Path
) -> None:
    run, clips = recognizer
    description = json.loads((bundle_path / "bundle.json").read_text())
    assert description["task"] == "asr" and description["ctc"]["blank"] == 0
    bundle = load_bundle(bundle_path)
    long = long_recording(clips, tmp_path / "long.wav")
    recordings = [*clips, long]
    assert bundle.transcribe(recordings) == run.transcribe(recordings)
    assert bundle.transcribe(clips, beam_size=4) == run.transcribe(clips, beam_size=4)
    assert bundle.predict(clips_table(clips)).equals(run.predict(clips_table(clips)))


def test_the_cli_prints_one_transcript_per_file(
    recognizer: tuple[mg.Run, list[Path]], bundle_path: Path
) -> None:
    run, clips = recognizer
    result = run_cli("transcribe", run.path, *clips, "--beam-size", "1")
    assert result.code == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == run.transcribe(clips)
    from_bundle = run_cli("transcribe", bundle_path, clips[0])
    assert from_bundle.stdout.splitlines() == run.transcribe(clips[:1])
    missing = run_cli("transcribe", run.path, "nowhere.wav")
    assert missing.code == 2 and "nowhere.wav: no such sound file" in missing.stderr
    assert "Traceback" not in missing.stderr
    lm_on_bundle = run_cli("transcribe", bundle_path, clips[0], "--lm", run.path)
    assert lm_on_bundle.code == 2 and "--lm needs PyTorch" in lm_on_bundle.stderr


def test_an_lm_weight_without_a_language_model_is_refused_naming_lm(
    recognizer: tuple[mg.Run, list[Path]],
) -> None:
    run, clips = recognizer
    assert run.config.model.lm is None  # type: ignore[union-attr]
    outcome = run_cli("transcribe", run.path, clips[0], "--lm-weight", "0.8")
    assert outcome.code == 2 and outcome.stdout == ""
    assert "--lm-weight 0.8: it weighs a language model, and none is given" in outcome.stderr
    assert "the run has no model.lm" in outcome.stderr and "--lm RUN" in outcome.stderr
    assert "Traceback" not in outcome.stderr


def test_bad_recordings_and_runs_are_refused(
    recognizer: tuple[mg.Run, list[Path]], tmp_path: Path
) -> None:
    run, clips = recognizer
    (tmp_path / "notes.wav").write_text("not a recording")
    with pytest.raises(DataError, match=r"notes\.wav: cannot be read as audio"):
        run.transcribe([clips[0], tmp_path / "notes.wav"])
    with pytest.raises(DataError, match="1-D array"):
        run.transcribe([np.zeros((2, 10), dtype=np.float32)])
    with pytest.raises(ConfigError, match=r"model\.lm"):
        run.transcribe(clips, lm=run.path)  # an asr run is no GPT
    other = mg.Run(run.path, run.config, run.preprocessor, torch.nn.Linear(1, 1))
    with pytest.raises(RunError, match="not a speech recognizer"):
        other.transcribe(clips)


def test_a_language_model_that_cannot_be_fused_stops_training_before_step_0(
    recognizer: tuple[mg.Run, list[Path]], tmp_path: Path
) -> None:
    run, _ = recognizer
    config = run.config.model_dump(mode="json", exclude_none=True)
    config["model"] |= {"beam_size": 4, "lm": str(run.path)}  # an asr run, not a GPT
    with pytest.raises(ConfigError, match=r"model\.lm: .*shallow fusion needs a GPT"):
        mg.train(config, output_dir=tmp_path / "fused")
    assert not (tmp_path / "fused" / "checkpoints").exists()


def test_an_lm_weight_without_a_language_model_is_refused_from_python(
    recognizer: tuple[mg.Run, list[Path]],
) -> None:
    run, clips = recognizer
    with pytest.raises(ConfigError, match=r"lm_weight 0.8: .* none is given .* lm=GPT_RUN"):
        run.transcribe([clips[0]], lm_weight=0.8)
