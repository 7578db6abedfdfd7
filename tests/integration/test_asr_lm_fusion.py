"""Shallow fusion with a Megalith GPT run: a tiny character LM trained here on digit words
fixes a deliberately ambiguous CTC decode and leaves clear ones alone."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import run_cli

import megalith as mg
from megalith.data.tokenizers import PAD, tokenizer_from_state
from megalith.errors import ConfigError
from megalith.models.ctc_decoding import CTCDecoding, decoding_settings
from megalith.transcribe.decode import CTCDecoder
from megalith.transcribe.shallow_fusion import GPTLanguageModel, label_map
from megalith.transcribe.transcriber import language_model_for

pytestmark = pytest.mark.slow  # trains a small GPT (about 10 s on 2 busy cores)

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# the recognizer's own char tokenizer: ids 4.. are these characters (x is never in a digit word)
RECOGNIZER = tokenizer_from_state(
    {"kind": "char", "lowercase": True, "vocabulary": list(" efghinorstuvwxz")}
)


@pytest.fixture(scope="module")
def digit_lm(tmp_path_factory: pytest.TempPathFactory) -> mg.Run:
    """A 2-layer char GPT trained for a few seconds on strings of digit words."""
    folder = tmp_path_factory.mktemp("lm")
    rng = random.Random(0)
    (folder / "corpus").mkdir()
    for part in range(10):  # a corpus splits by file
        lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 7))) for _ in range(20)]
        text = "\n".join(lines) + "\n"
        (folder / "corpus" / f"digits{part}.txt").write_text(text, encoding="utf-8")
    config = {
        "name": "digit-lm",
        "seed": 0,
        "data": {"source": "corpus", "format": "text", "split": {"val": 0.1, "test": 0.1}},
        "outputs": [{"name": "text", "type": "text", "tokenizer": "char", "vocab_size": 64}],
        "model": {"arch": "gpt", "context": 32, "layers": 2, "heads": 2, "dim": 32},
        "train": {"epochs": 6, "batch_size": 16, "optimizer": {"name": "adamw", "lr": 0.02}},
    }
    path = folder / "gpt.yaml"
    path.write_text(yaml.safe_dump(config))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny steps: a second thread only adds synchronisation
    try:
        mg.train(path, output_dir=folder / "run")
    finally:
        torch.set_num_threads(threads)
    return mg.load(folder / "run")


def ids(text: str) -> list[int]:
    return RECOGNIZER.encode([text])[0]


def posteriors(text: str, confusions: dict[int, dict[str, float]], seed: int = 0) -> np.ndarray:
    """(T, V) frame logits spelling `text`, one frame per character then a blank, except that
    character i is spread over the letters in `confusions[i]` (letter -> probability)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, label in enumerate(ids(text)):
        frame = np.full(RECOGNIZER.vocab_size, 0.002)
        for letter, p in confusions.get(i, {RECOGNIZER.decode([label]): 0.9}).items():
            frame[ids(letter)[0]] = p
        rows.append(frame)
        blank = np.full(RECOGNIZER.vocab_size, 0.002)
        blank[PAD] = 0.9 + rng.uniform(0, 0.05)
        rows.append(blank)
    return np.log(np.stack(rows) / np.stack(rows).sum(1, keepdims=True)).astype(np.float32)


def transcript(decoder: CTCDecoder, logits: np.ndarray) -> str:
    return RECOGNIZER.decode(decoder(logits))


def test_the_lm_fixes_an_ambiguous_letter_and_never_worsens_a_clear_decode(
    digit_lm: mg.Run,
) -> None:
    lm = GPTLanguageModel(digit_lm, RECOGNIZER)
    alone = CTCDecoder(CTCDecoding(beam_size=8), RECOGNIZER)
    fused = CTCDecoder(CTCDecoding(beam_size=8, lm="given", lm_weight=0.8), RECOGNIZER, lm)
    # "two" whose w sounds more like an x (no digit word has an x)
    ambiguous = posteriors("one two", {5: {"x": 0.5, "w": 0.4}})
    assert transcript(alone, ambiguous) == "one txo"
    assert transcript(fused, ambiguous) == "one two"
    # "nine" whose first n could be an m... or "seven" with its v heard as f
    seven = posteriors("seven six", {2: {"f": 0.55, "v": 0.35}})
    assert transcript(alone, seven) == "sefen six"
    assert transcript(fused, seven) == "seven six"
    for text in ["three eight", "zero five one", "four nine six two"]:
        clear = posteriors(text, {})
        assert transcript(fused, clear) == transcript(alone, clear) == text


def test_the_lm_is_scored_with_its_kv_cache_as_without(digit_lm: mg.Run) -> None:
    lm = GPTLanguageModel(digit_lm, RECOGNIZER)
    prefix = tuple(ids("one tw"))
    cached = lm(prefix)  # built one token at a time on the cached heads
    tokens = [3] + [int(lm.to_lm[label]) for label in prefix]
    with torch.inference_mode():
        logits, _ = digit_lm.model.decode(torch.tensor([tokens]))
    whole = logits[0, -1].float().log_softmax(-1).numpy()
    letters = np.flatnonzero(lm.to_lm >= 0)
    np.testing.assert_allclose(cached[letters], whole[lm.to_lm[letters]], atol=1e-5)
    assert cached[ids("o")[0]] > cached[ids("x")[0]]  # no digit word has an x


def test_prefetched_prefixes_score_as_one_by_one(digit_lm: mg.Run) -> None:
    one_by_one, batched = (
        GPTLanguageModel(digit_lm, RECOGNIZER),
        GPTLanguageModel(digit_lm, RECOGNIZER),
    )
    heads = [tuple(ids(text)) for text in ["one", "tw", "thre", "se"]]
    for head in heads:
        batched(head)  # cached heads of different lengths
    longer = [(*head, ids(letter)[0]) for head in heads for letter in "oevw"]
    batched.prefetch(longer)  # one GPT step per length, for 16 prefixes
    assert all(prefix in batched._states for prefix in longer)
    letters = np.flatnonzero(batched.to_lm >= 0)
    for prefix in longer:
        np.testing.assert_allclose(batched(prefix)[letters], one_by_one(prefix)[letters], atol=1e-5)


def test_a_tokenizer_that_spells_differently_is_refused(digit_lm: mg.Run) -> None:
    words = tokenizer_from_state({"kind": "word", "lowercase": True, "vocabulary": WORDS})
    with pytest.raises(ConfigError, match=r"model\.lm: .*char-level or the same tokenizer"):
        GPTLanguageModel(digit_lm, words)
    lm_tokenizer = digit_lm.preprocessor.outputs[0].tokenizer
    assert lm_tokenizer is not None
    mapped = label_map(RECOGNIZER, lm_tokenizer, "model.lm")
    assert mapped[PAD] == -1  # the blank has no letter
    assert lm_tokenizer.decode([int(mapped[ids("w")[0]])]) == "w"


def test_an_lm_that_is_no_gpt_or_no_run_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"model\.lm"):
        language_model_for(CTCDecoding(beam_size=4, lm=str(tmp_path / "gone")), RECOGNIZER, mg.load)
    with pytest.raises(ValueError, match="beam_size"):
        CTCDecoding(beam_size=1, lm="somewhere")
    settings = decoding_settings(CTCDecoding(), lm="somewhere")
    assert settings.beam_size == 8  # an LM on a greedy run searches with a beam
    with pytest.raises(ConfigError, match=r"model\.beam_size"):
        decoding_settings(CTCDecoding(), beam_size=0)


def test_a_recognizer_run_transcribes_with_the_gpt_run_loaded_once(
    digit_lm: mg.Run, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from speech_runs import tiny_recognizer

    run, clips = tiny_recognizer(tmp_path_factory)
    lm_path = str(digit_lm.path)
    fused = run.transcribe(clips, beam_size=4, lm=lm_path, lm_weight=0.8, token_bonus=0.5)
    assert len(fused) == len(clips) and all(isinstance(text, str) for text in fused)
    # weight 0 is the plain beam, exactly; the GPT run was read once for all three calls
    unweighted = run.transcribe(clips, beam_size=4, lm=lm_path, lm_weight=0.0)
    assert unweighted == run.transcribe(clips, beam_size=4)
    assert list(run._language_model_runs) == [lm_path]
    outcome = run_cli("transcribe", run.path, clips[0], "--lm", lm_path, "--lm-weight", "0.8")
    assert outcome.code == 0, outcome.stderr
    assert outcome.stdout.splitlines() == [
        run.transcribe(clips[:1], lm=lm_path, lm_weight=0.8, beam_size=8)[0]
    ]


def test_greedy_decoding_of_a_fused_run_refuses_an_lm_weight_naming_beam_size(
    digit_lm: mg.Run, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """--beam-size 1 drops the run's model.lm (greedy decoding has none): an --lm-weight with
    it used to be dropped too, silently."""
    from speech_runs import tiny_recognizer

    run, clips = tiny_recognizer(tmp_path_factory)
    fused = tmp_path / "fused"
    shutil.copytree(run.path, fused, ignore=shutil.ignore_patterns("checkpoints"))
    config = yaml.safe_load((fused / "config.yaml").read_text())
    config["model"].update(lm=str(digit_lm.path), beam_size=4)
    (fused / "config.yaml").write_text(yaml.safe_dump(config))

    with pytest.raises(ConfigError, match=r"^beam_size 1 \(--beam-size 1\) decodes greedily"):
        mg.load(fused).transcribe(clips[:1], beam_size=1, lm_weight=0.8)
    outcome = run_cli("transcribe", fused, clips[0], "--beam-size", "1", "--lm-weight", "0.8")
    assert outcome.code == 2 and "Traceback" not in outcome.stderr
    assert len(outcome.stderr.strip().splitlines()) == 1
    assert "--beam-size 1" in outcome.stderr and "lm_weight 0.8" in outcome.stderr
    greedy = run_cli("transcribe", fused, clips[0], "--beam-size", "1")  # no weight: as before
    assert greedy.code == 0, greedy.stderr
    assert greedy.stdout.splitlines() == run.transcribe(clips[:1], beam_size=1)
