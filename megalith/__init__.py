"""Megalith: describe a deep-learning model in one config; train, evaluate and predict with it.

    import megalith as mg
    run = mg.train("examples/digits.yaml")
    mg.load(run.path).predict(frame)

The heavy modules (torch, pandas) load on first use, so `megalith --help` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# not lazy: the subpackage megalith.compress, once imported, would shadow a lazy name (light:
# torch and ONNX load inside the function)
from megalith.compress import compress
from megalith.errors import ConfigError, DataError, MegalithError, RunError

if TYPE_CHECKING:
    from megalith.config import Config
    from megalith.loading import load
    from megalith.pipeline import train
    from megalith.privacy.audit import audit_privacy
    from megalith.run import Run
    from megalith.serving import serve
    from megalith.tuning.study import tune

__all__ = [
    "Config",
    "ConfigError",
    "DataError",
    "MegalithError",
    "Run",
    "RunError",
    "audit_privacy",
    "compress",
    "load",
    "serve",
    "train",
    "tune",
]

_LAZY = {
    "Config": "megalith.config",
    "Run": "megalith.run",
    "audit_privacy": "megalith.privacy.audit",
    "load": "megalith.loading",
    "serve": "megalith.serving",
    "train": "megalith.pipeline",
    "tune": "megalith.tuning.study",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'megalith' has no attribute '{name}'")
