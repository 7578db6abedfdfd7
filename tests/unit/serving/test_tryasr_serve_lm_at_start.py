"""`megalith serve` of a recognizer run whose model.lm is missing (moved, deleted) stops at
start-up with the config error: it started, said /health ok, and answered every POST
/transcribe with a bare 500 Internal Server Error."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from megalith.data.tokenizers import tokenizer_from_state
from megalith.errors import ConfigError
from megalith.models.ctc_decoding import CTCDecoding
from megalith.serving import build_server
from megalith.serving.backend import Backend


def recognizer_backend(lm: str, loads: list[str]) -> Backend:
    def load(path: str) -> Any:
        loads.append(path)
        raise ConfigError(f"model.lm: run directory not found: {path}")

    tokenizer = tokenizer_from_state({"kind": "char", "lowercase": True, "vocabulary": list("ab")})
    run: Any = SimpleNamespace(
        config=SimpleNamespace(model=CTCDecoding(beam_size=4, lm=lm)),
        preprocessor=SimpleNamespace(outputs=[SimpleNamespace(tokenizer=tokenizer)]),
        _language_model_run=load,
    )
    return Backend(predictor=run, name="torch", source=Path("asr"), run=run, speech=True)


def test_a_missing_language_model_stops_serve_before_it_listens() -> None:
    loads: list[str] = []
    with pytest.raises(ConfigError, match=r"model\.lm: run directory not found: /gone/lm"):
        build_server(recognizer_backend("/gone/lm", loads), SimpleNamespace())
    assert loads == ["/gone/lm"]
