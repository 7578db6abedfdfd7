"""`megalith export RUN`: the run's network as a verified ONNX inference bundle.

    bundle = export_run(Run.load("runs/digits-cnn"), "digits-bundle")

The bundle (layout in megalith.runtime.bundle) is written to a temporary folder beside the
output and moved into place only after the check in megalith.export.verify passed, so a folder
named `bundle.json` is always a verified one.
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from megalith.data.specs import InputSpec
from megalith.errors import RunError
from megalith.runtime.bundle import DESCRIPTION_FILE
from megalith.stage_folder import check_output_folder, staged_folder

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

    from megalith.config import Config
    from megalith.data.preprocess import Preprocessor
    from megalith.data.sources import Table
    from megalith.runtime.bundle import BundleFiles

FORMATS = ("onnx",)
CHECK_ROWS = 256
"""Rows of the test split run through both engines (all of them when the split is smaller)."""


class Run(Protocol):
    """What export reads of a run: megalith.run.Run (not imported here, as Run.export imports
    this package)."""

    path: Path
    config: Config
    preprocessor: Preprocessor
    model: nn.Module

    def data_splits(self) -> tuple[Table, dict[str, pd.DataFrame]]: ...

    def predict(
        self, data: pd.DataFrame | str | Path, *, base_dir: str | Path | None = None
    ) -> pd.DataFrame: ...


def export_run(
    run: Run,
    output: str | Path | None = None,
    *,
    format: str = "onnx",
    overwrite: bool = False,
    exporter: str = "dynamo",
) -> Path:
    """Write `run` as an inference bundle (model.onnx, preprocessor.json, bundle.json; for a
    seq2seq run encoder.onnx and decoder.onnx instead of model.onnx, megalith.export.seq2seq)
    in `output` (default RUN/bundle), after checking ONNX Runtime against PyTorch on the run's
    test rows. Returns the bundle's folder. `exporter` is `dynamo` (torch.export, the default)
    or `torchscript` (PyTorch's legacy tracer: a fallback, checked the same way; not for
    seq2seq runs).

    Raises:
        RunError: the format or the model family is not supported, `output` holds other
            files, the exporter failed, or the check found a difference (naming the output).
        DataError: the run's data can no longer be read for the check.
    """
    from megalith.export.graph import EXPORTERS
    from megalith.models.seq2seq import Seq2Seq
    from megalith.runtime.bundle import BundleFiles

    if format not in FORMATS:
        raise RunError(f"--format {format}: unknown; export writes {', '.join(FORMATS)}")
    if exporter not in EXPORTERS:
        raise RunError(f"--exporter {exporter}: unknown; choose {' or '.join(EXPORTERS)}")
    check_supported(run)
    target = Path(output) if output is not None else run.path / "bundle"
    check_output_folder(
        target, overwrite, markers=[DESCRIPTION_FILE], holds="a bundle", replace="it"
    )
    seq2seq = isinstance(run.model, Seq2Seq)
    if seq2seq and exporter != "dynamo":
        raise RunError(f"--exporter {exporter}: a seq2seq run exports with dynamo only")
    with staged_folder(target) as folder:
        if seq2seq:
            from megalith.export.seq2seq import write_seq2seq_bundle

            write_seq2seq_bundle(run, BundleFiles(folder))
        else:
            _write_one_graph(run, BundleFiles(folder), exporter)
    return target


def _write_one_graph(run: Run, files: BundleFiles, exporter: str) -> None:
    """model.onnx, preprocessor.json and bundle.json in `files.path`, after the check."""
    import onnxruntime

    from megalith.export.describe import describe_bundle, graph_outputs
    from megalith.export.graph import export_graph, graph_names
    from megalith.export.verify import check_export

    specs = graph_input_specs(run, exporter)
    arrays, split = _check_rows(run, specs)
    graph_inputs = graph_names([s.name for s in specs], "input")
    outputs = graph_outputs(run.preprocessor)
    names = [output.name for output in outputs]
    example = [a[:2] for a in arrays]  # two rows: a batch of one would fix the batch size
    graph = _exportable(run.model)  # the check below compares it with the model as trained
    export_graph(graph, specs, example, graph_inputs, names, files.model, exporter)
    shutil.copyfile(run.path / "preprocessor.json", files.preprocessor)
    session = onnxruntime.InferenceSession(str(files.model), providers=["CPUExecutionProvider"])
    checked = check_export(run.model, session, specs, arrays, graph_inputs, outputs)
    checked["split"] = split
    checked["exporter"] = exporter
    description = describe_bundle(run, specs, graph_inputs, outputs, checked)
    if run.config.model.arch == "asr":  # waveform -> CTC logits: how to read and decode them
        from megalith.export.speech import add_speech_description

        add_speech_description(run, description)
    files.description.write_text(json.dumps(description, indent=1), encoding="utf-8")


def check_supported(run: Run) -> None:
    """Raise RunError in one line when the run's model family cannot be exported."""
    from megalith.models.asr import ASR
    from megalith.models.blocks import FeatureModel
    from megalith.models.gpt import GPT
    from megalith.models.pretrained import PretrainedModel
    from megalith.models.seq2seq import Seq2Seq

    model = run.model
    if isinstance(model, (FeatureModel, GPT, Seq2Seq, PretrainedModel, ASR)):
        return
    raise RunError(  # a model from outside Megalith's families
        f"{run.path}: exporting a {type(model).__name__} model (model.arch "
        f"{run.config.model.arch}) is not supported; "
        "export takes mlp, cnn and resnet runs (tables, images, text, sequences), seq2seq runs, "
        "asr speech recognizers, pretrained models and gpt language models (their next-token "
        "step)"
    )


def _exportable(model: nn.Module) -> nn.Module:
    """The module to trace: recurrent encoders without packing, LoRA adapters merged."""
    from megalith.export.recurrent import without_packing
    from megalith.models.pretrained import PretrainedModel

    if isinstance(model, PretrainedModel) and model.lora:
        merged = copy.deepcopy(model)
        net: Any = merged.net
        merged.net = net.merge_and_unload()  # peft's adapters folded into the weights
        return merged.eval()
    return without_packing(model)


def graph_input_specs(run: Run, exporter: str = "dynamo") -> list[InputSpec]:
    """The graph's inputs: the preprocessor's, or a language model's window of token ids
    (named as its text column, up to `context` tokens); variable-length audio at the fitted
    length where the graph cannot leave it free (a recurrent model, the torchscript exporter)."""
    from torch import nn

    from megalith.models.gpt import GPT
    from megalith.models.pretrained import PretrainedModel

    model = run.model
    if isinstance(model, (GPT, PretrainedModel)) and not run.preprocessor.input_specs:
        text = run.preprocessor.output_specs[0]
        return [InputSpec(name=text.name, type="text", shape=(model.context,))]
    recurrent = any(isinstance(module, nn.RNNBase) for module in model.modules())
    if recurrent or exporter == "torchscript":
        # dynamo cannot decompose a GRU over a symbolic number of frames (a crnn), and tracing
        # bakes the frame arithmetic in: such a graph takes clips at the fitted length, which the
        # preprocessor pads every clip to
        return [replace(spec, variable_length=False) for spec in run.preprocessor.input_specs]
    return run.preprocessor.input_specs


def _check_rows(run: Run, specs: list[InputSpec]) -> tuple[list[Any], str]:
    """The encoded inputs of up to CHECK_ROWS rows of the test split (val, then train, when
    the run has no test rows), in input order, and the split's name; for a language model,
    windows of its corpus."""
    table, splits = run.data_splits()
    for split in ("test", "val", "train"):
        frame = splits.get(split)
        if frame is None or len(frame) == 0:
            continue
        origin = f"{table.origin} ({split} split)"
        if run.preprocessor.input_specs:
            rows = frame.iloc[:CHECK_ROWS]
            encoded = run.preprocessor.encode_inputs(rows, base_dir=table.base_dir, origin=origin)
        else:
            (spec,) = specs
            windows = run.preprocessor.transform_corpus(frame, context=spec.shape[0], origin=origin)
            encoded = {spec.name: windows.inputs[spec.name][:CHECK_ROWS].numpy()}
        if len(encoded[specs[0].name]) > 0:
            return [encoded[s.name] for s in specs], split
    raise RunError(f"{run.path}: the run's data has no rows to check the export on")
