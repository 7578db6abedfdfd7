"""What the server predicts with: an exported bundle in ONNX Runtime, or the run in PyTorch.

Both give `predict(frame) -> DataFrame` with the same columns as `megalith predict` and expose
the fitted preprocessor, from which the request schema and /metadata are made. The bundle path
never imports torch, so `pip install "megalith[runtime,serve]"` serves a bundle.
"""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import pandas as pd

from megalith.data.preprocess import Preprocessor
from megalith.errors import RunError

BackendName = Literal["auto", "onnx", "torch"]


class Predictor(Protocol):
    """A loaded model that predicts on raw rows (a `Run` or a runtime `Bundle`)."""

    preprocessor: Preprocessor

    def predict(self, data: pd.DataFrame, *, base_dir: str | Path | None = None) -> pd.DataFrame:
        """Predictions and class probabilities for every row, indexed like the rows."""
        ...


@dataclass
class Backend:
    """The predictor the server uses, what it is, and the run when PyTorch serves it."""

    predictor: Predictor
    name: Literal["onnx", "torch"]
    source: Path
    language_model: bool = False
    run: Any = None
    """The `megalith.run.Run` with the torch backend (streamed /generate); None with onnx."""
    speech: bool = False
    """A speech recognizer (model.arch asr): served as POST /transcribe."""

    def input_columns(self) -> list[tuple[str, str]]:
        """(column name, input type) of each input, in the run's order."""
        configs: list[Any] = [encoder.config for encoder in self.predictor.preprocessor.inputs]
        return [(config.name, config.type) for config in configs]

    def metadata(self) -> dict[str, Any]:
        """/metadata: inputs, outputs (classes, threshold), backend and versions."""
        inputs = [{"name": name, "type": kind} for name, kind in self.input_columns()]
        outputs = [_describe_output(encoder) for encoder in self.predictor.preprocessor.outputs]
        return {
            "source": self.source.name,
            "backend": self.name,
            "task": "generate" if self.language_model else "predict",
            "inputs": inputs,
            "outputs": outputs,
            "versions": _versions(self.name),
        }


def load_backend(
    path: str | Path | Any, backend: BackendName = "auto", *, threads: int | None = None
) -> Backend:
    """The predictor for a run directory, a bundle folder, or a loaded `Run` (served as it is,
    with PyTorch, unless `backend` asks for its exported bundle).

    `auto` serves a bundle with ONNX Runtime; a run directory with its exported bundle
    (RUN/bundle) when there is one, else with PyTorch. `threads`: ONNX Runtime's intra-op
    threads (PyTorch's are the process's, set by `serve`).

    Raises:
        RunError: the folder is neither, or the asked backend cannot serve it (a bundle holds
            no PyTorch weights; a run without RUN/bundle needs `megalith export` for onnx).
    """
    from megalith.runtime.predictor import is_bundle, load_bundle

    if hasattr(path, "preprocessor") and hasattr(path, "predict"):  # a loaded Run
        loaded: Any = path
        if backend != "onnx":
            from megalith.config import is_language_model

            lm = is_language_model(loaded.config)
            speech = loaded.config.model.arch == "asr"
            return Backend(loaded, "torch", loaded.path, lm, run=loaded, speech=speech)
        path = loaded.path
    folder = Path(path)
    if is_bundle(folder):
        if backend == "torch":
            raise RunError(
                f"{folder} is an exported bundle: it holds ONNX weights only; serve the run "
                "directory it came from with --backend torch, or leave --backend out"
            )
        return _bundle_backend(load_bundle(folder, threads=threads), folder)
    exported = folder / "bundle"
    stale = is_bundle(exported) and _exported_from_other_weights(folder, exported)
    if backend == "onnx" and stale:
        raise RunError(
            f"{exported} was exported from earlier weights than {folder}'s (the run trained on "
            f"since): run `megalith export {folder} --overwrite`, or serve with --backend torch"
        )
    if stale:  # auto: the run's own weights, not an old export of them
        print(
            f"note: {exported} was exported from earlier weights; serving {folder} with PyTorch "
            f"(`megalith export {folder} --overwrite` brings the bundle up to date)",
            file=sys.stderr,
        )
    needs_torch = (
        backend == "auto" and is_bundle(exported) and not stale and decodes_in_torch(folder)
    )
    if needs_torch:
        print(
            f"note: {folder} decodes with {needs_torch}, which its bundle (encoder and CTC head) "
            f"cannot; serving it with PyTorch (--backend onnx serves the bundle's CTC decoding)",
            file=sys.stderr,
        )
    if backend == "onnx" or (
        backend == "auto" and is_bundle(exported) and not stale and not needs_torch
    ):
        if not is_bundle(exported):
            raise RunError(
                f"{folder} has no exported bundle (RUN/bundle); run `megalith export {folder}` "
                "first, or serve it with --backend torch"
            )
        bundle = _bundle_backend(load_bundle(exported, threads=threads), folder)
        if backend == "onnx" or not bundle.language_model:
            return bundle  # a language model streams from PyTorch's KV cache unless told
    from megalith.config import is_language_model
    from megalith.run import Run

    run = Run.load(folder)
    lm, speech = is_language_model(run.config), run.config.model.arch == "asr"
    return Backend(run, "torch", folder, language_model=lm, run=run, speech=speech)


def decodes_in_torch(folder: Path) -> str:
    """What a speech run's own decoding needs beyond its bundle's CTC decoders ("" for nothing):
    the attention decoder of a hybrid (decode_ctc_weight below 1) or a GPT fused by `model.lm`."""
    from megalith.config import load_config
    from megalith.errors import MegalithError

    try:
        model = load_config(folder / "config.yaml")[0].model
        if getattr(model, "arch", None) != "asr":
            return ""
        from megalith.models.ctc_decoding import decoding_settings, joint_ctc_weight

        settings = decoding_settings(model)
        weight = joint_ctc_weight(settings, getattr(model, "ctc_weight", 1.0))
    except (MegalithError, OSError):  # an unreadable run is Run.load's to report
        return ""
    if settings.lm is not None:
        return f"the language model {settings.lm} (model.lm)"
    if weight < 1:
        return "joint CTC/attention beam search (a hybrid's attention decoder)"
    return ""


def _bundle_backend(bundle: Any, source: Path) -> Backend:
    task = bundle.description.get("task")
    return Backend(bundle, "onnx", source, task == "language_model", speech=task == "asr")


def _describe_output(encoder: Any) -> dict[str, Any]:
    config, state = encoder.config, encoder.state()
    entry: dict[str, Any] = {"name": config.name, "type": config.type}
    if config.type == "category":
        entry["classes"] = state["classes"]
    elif config.type == "binary":
        entry["classes"] = state["values"]
        entry["positive"] = state["values"][1]
        entry["threshold"] = encoder.threshold
    return entry


def _versions(backend: str) -> dict[str, str]:
    names = ["megalith", "onnxruntime" if backend == "onnx" else "torch", "fastapi"]
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def _exported_from_other_weights(run: Path, bundle: Path) -> bool:
    """Whether RUN/bundle records weights other than the run's model.safetensors (a resume or
    an --overwrite training since the export); bundles from before the record count as current.
    """
    import json

    from megalith.paths import file_sha256

    try:
        recorded = json.loads((bundle / "bundle.json").read_text(encoding="utf-8"))
        weights = run / "model.safetensors"
        digest = recorded.get("weights_sha256") if isinstance(recorded, dict) else None
        return bool(digest) and weights.is_file() and file_sha256(weights) != digest
    except (OSError, ValueError):
        return False  # unreadable: load_bundle reports it
