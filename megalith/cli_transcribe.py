"""`megalith transcribe RUN a.wav b.flac`: registered on the app in megalith.cli."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from megalith.cli_args import RunOrBundleArg


def transcribe(
    run: RunOrBundleArg,
    files: Annotated[
        list[Path], typer.Argument(help="Sound files (WAV, FLAC, OGG, MP3) of any length.")
    ],
    beam_size: Annotated[
        int | None,
        typer.Option(
            "--beam-size", min=1, help="CTC prefix beam search width (1: greedy; default: run's)."
        ),
    ] = None,
    lm: Annotated[
        Path | None,
        typer.Option("--lm", help="A GPT run fused into the beam search (shallow fusion)."),
    ] = None,
    lm_weight: Annotated[
        float | None, typer.Option("--lm-weight", min=0.0, help="The language model's weight.")
    ] = None,
    token_bonus: Annotated[
        float | None, typer.Option("--token-bonus", help="Score added per written token.")
    ] = None,
    ctc_weight: Annotated[
        float | None,
        typer.Option(
            "--ctc-weight",
            max=1.0,
            help="A hybrid model's CTC weight in joint decoding, above 0 (1: CTC alone; "
            "default: run's).",
        ),
    ] = None,
    overlap: Annotated[
        float | None,
        typer.Option(
            "--overlap",
            min=0.0,
            help="Seconds shared by the windows a long file is cut into (default: a quarter "
            "of the model's clip).",
        ),
    ] = None,
) -> None:
    """Print one transcript per sound file, in order, with a speech recognizer (model.arch asr)
    or its exported bundle; long files are cut into overlapping windows and stitched."""
    from megalith.runtime.predictor import is_bundle

    names = [str(file) for file in files]
    if ctc_weight is not None and ctc_weight <= 0:
        from megalith.cli_args import fail

        fail(
            f"--ctc-weight {ctc_weight}: give a weight above 0 and at most 1 (the CTC prefix "
            "score decides where a transcript ends; 1 decodes with CTC alone)"
        )
    if lm_weight is not None and lm is None and is_bundle(run):
        _refuse_weight_without_lm(lm_weight, "a bundle decodes without a language model")
    if token_bonus and is_bundle(run):
        from megalith.cli_args import fail

        fail(
            f"--token-bonus {token_bonus:g}: a bundle's decoding adds no token bonus (it "
            "searches with the CTC scores alone), so it would be ignored; transcribe with the "
            "run directory, or leave --token-bonus out"
        )
    if is_bundle(run):
        from megalith.runtime import load_bundle

        if lm is not None:
            from megalith.cli_args import fail

            fail("--lm needs PyTorch: transcribe with the run directory instead of its bundle")
        if ctc_weight is not None and ctc_weight < 1:
            from megalith.cli_args import fail

            fail(
                f"--ctc-weight {ctc_weight}: a bundle holds the encoder and CTC head only "
                "(attention decoding needs the run); transcribe with the run directory, or "
                "leave --ctc-weight out"
            )
        texts = load_bundle(run).transcribe(
            files, names=names, beam_size=beam_size, overlap=overlap
        )
    else:
        from megalith.run import Run

        loaded = Run.load(run)
        if (
            lm_weight is not None
            and lm is None
            and getattr(loaded.config.model, "lm", None) is None
        ):
            _refuse_weight_without_lm(lm_weight, "the run has no model.lm")
        note = implied_beam_note(loaded.config.model, beam_size, lm, ctc_weight)
        if note:
            typer.echo(note, err=True)
        texts = loaded.transcribe(
            files,
            names=names,
            beam_size=beam_size,
            lm=lm,
            lm_weight=lm_weight,
            token_bonus=token_bonus,
            overlap=overlap,
            ctc_weight=ctc_weight,
        )
    for text in texts:
        typer.echo(text)


def _refuse_weight_without_lm(lm_weight: float, why: str) -> NoReturn:
    """--lm-weight weighs a language model in the beam search; with none it would do nothing."""
    from megalith.cli_args import fail

    fail(
        f"--lm-weight {lm_weight:g}: it weighs a language model, and none is given ({why}); "
        "name a GPT run with --lm RUN (on the run directory, not its bundle), or leave "
        "--lm-weight out"
    )


def implied_beam_note(
    model_config: Any, beam_size: int | None, lm: Path | None, ctc_weight: float | None = None
) -> str | None:
    """What stderr says when --lm changes how the run decodes (None when it does not): on a
    run that decodes greedily, without --beam-size, shallow fusion needs a beam search, so one
    of LM_BEAM_SIZE prefixes is used; on a hybrid without --ctc-weight, fusion happens in the
    CTC prefix beam search, so the attention decoder is left out (decode_ctc_weight 1)."""
    from megalith.models.ctc_decoding import LM_BEAM_SIZE

    if lm is None:
        return None
    hybrid = (
        getattr(model_config, "ctc_weight", 1.0) < 1
        and ctc_weight is None
        and getattr(model_config, "decode_ctc_weight", None) is None
    )
    beam = beam_size is None and getattr(model_config, "beam_size", 1) == 1
    if hybrid:
        width = f" of {LM_BEAM_SIZE} prefixes (give --beam-size to choose)" if beam else ""
        return (
            f"note: --lm fuses the language model into a CTC prefix beam search{width}, with "
            "the CTC head alone: the hybrid's attention decoder is not used with --lm"
        )
    if not beam:
        return None
    return (
        f"note: --lm fuses the language model into a CTC prefix beam search; without --beam-size "
        f"it keeps {LM_BEAM_SIZE} prefixes (the run decodes greedily); give --beam-size to choose"
    )
