"""`megalith explain` on a run with an audio input: refused in one line naming the input (it
raised a bare ValueError traceback from the attribution space)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from audio_specs import CLIP

from megalith.data.specs import OutputSpec
from megalith.errors import RunError
from megalith.explain import check_supported
from megalith.models import CRNNConfig, build_model


def test_explain_refuses_an_audio_run_in_one_line_naming_the_input():
    label = [OutputSpec("label", "category", num_classes=3)]
    model = build_model(CRNNConfig(channels=[8], gru_hidden=8), [CLIP], label)
    run = SimpleNamespace(
        path="runs/digits", model=model, preprocessor=SimpleNamespace(input_specs=[CLIP])
    )
    with pytest.raises(RunError, match=r"runs/digits: input 'clip' is audio, which explain"):
        check_supported(run)  # type: ignore[arg-type]
