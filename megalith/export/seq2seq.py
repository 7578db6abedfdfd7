"""Seq2seq export: the encoder and the decoder step as two ONNX graphs, checked on what they write.

    encoder.onnx  source ids (B, S) -> memory (B, S, D), source_mask (B, S) (True: a real token)
    decoder.onnx  target prefix ids (B, T), memory, source_mask -> next-token logits (B, T, V)

The batch and both lengths are free. The check runs rows of the run's test split through both
engines: the teacher-forced logits as for every family (megalith.export.verify, batch sizes 1, 7
and 64, within 1e-4), and then the real check, the texts: the bundle's own `predict` (numpy beam
search over the two graphs, megalith.runtime.decoding) must write exactly what `Run.predict`
writes, at each of those batch sizes.
"""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from megalith.data.specs import InputSpec
from megalith.data.tokenizers import BOS, EOS, PAD
from megalith.errors import RunError
from megalith.export.describe import describe_bundle
from megalith.export.graph import graph_names, trace_to_onnx
from megalith.export.verify import BATCH_SIZES, CheckedOutput, check_export
from megalith.models.seq2seq import Seq2Seq, teacher_forcing
from megalith.runtime.bundle import DECODER_FILE, ENCODER_FILE, BundleFiles
from megalith.runtime.decoding import DECODER_INPUTS, DECODER_OUTPUTS, ENCODER_OUTPUTS

if TYPE_CHECKING:
    from megalith.export import Run

_SHOWN = 3
"""Differing rows named in a failed check."""


class SourceEncoder(nn.Module):
    """forward(source (B, S)) -> memory (B, S, D), source_mask (B, S)."""

    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = model

    def forward(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        memory, mask = self.model.encode(source)
        return memory, mask[:, 0, 0, :]  # (B, 1, 1, S) -> (B, S)


class TargetDecoder(nn.Module):
    """forward(target (B, T), memory (B, S, D), source_mask (B, S)) -> logits (B, T, V)."""

    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, target: torch.Tensor, memory: torch.Tensor, source_mask: torch.Tensor
    ) -> torch.Tensor:
        logits, _ = self.model.decode(target, memory, source_mask[:, None, None, :])
        return logits


class EncoderDecoder:
    """The two sessions as one graph from (source, target) to logits, for `check_export`."""

    def __init__(self, encoder: Any, decoder: Any, source: str) -> None:
        self.encoder, self.decoder, self.source = encoder, decoder, source

    def run(self, wanted: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        memory, mask = self.encoder.run(list(ENCODER_OUTPUTS), {self.source: feed[self.source]})
        decoder_feed = dict(
            zip(DECODER_INPUTS, (feed[DECODER_INPUTS[0]], memory, mask), strict=True)
        )
        return list(self.decoder.run(wanted, decoder_feed))


def write_seq2seq_bundle(run: Run, files: BundleFiles) -> None:
    """encoder.onnx, decoder.onnx, preprocessor.json and bundle.json in `files.path`, after
    the check (see the module's docstring).

    Raises:
        RunError: the exporter failed, or the check found a difference in logits or texts.
    """
    import onnxruntime

    model = run.model
    assert isinstance(model, Seq2Seq)
    rows, pairs, split = _check_rows(run)
    source, target = (pairs.inputs[n].numpy() for n in (model.source_name, model.name))
    (source_input,) = graph_names([model.source_name], "input")
    two = np.arange(2) % len(source)  # two rows: a batch of one would fix the batch size
    _export_graphs(model, source[two], target[two], source_input, files)
    shutil.copyfile(run.path / "preprocessor.json", files.preprocessor)
    sessions = [
        onnxruntime.InferenceSession(str(files.graph(f)), providers=["CPUExecutionProvider"])
        for f in (ENCODER_FILE, DECODER_FILE)
    ]
    source_spec = run.preprocessor.input_specs[0]
    specs = [source_spec, InputSpec(name=model.name, type="text", shape=(target.shape[1],))]
    output = CheckedOutput(name=model.name, graph_name=DECODER_OUTPUTS[0], type="text")
    graph_inputs = [source_input, DECODER_INPUTS[0]]
    combined = EncoderDecoder(sessions[0], sessions[1], source_input)
    checked = check_export(model, combined, specs, [source, target], graph_inputs, [output])
    description = describe_bundle(run, [source_spec], [source_input], [output], checked)
    _describe_seq2seq(description, run, model, source_spec)
    files.description.write_text(json.dumps(description, indent=1), encoding="utf-8")
    checked["texts"] = _check_texts(run, files, rows)
    checked["split"] = split
    del description["verified"]
    description["verified"] = checked  # last, as in every bundle.json
    files.description.write_text(json.dumps(description, indent=1), encoding="utf-8")


def steps(model: Seq2Seq) -> int:
    """The most tokens the run's beam search writes per row (as megalith's own beam search)."""
    return min(model.max_new_tokens, model.target_positions.max_length - 1)


def _export_graphs(
    model: Seq2Seq, source: np.ndarray, target: np.ndarray, source_input: str, files: BundleFiles
) -> None:
    """Trace the encoder on two source rows and the decoder on their teacher-forced targets."""
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    source_length = torch.export.Dim(
        "source_length", min=1, max=max(model.source_positions.max_length, 2)
    )
    target_length = torch.export.Dim(
        "target_length", min=1, max=max(model.target_positions.max_length, 2)
    )
    encoder = SourceEncoder(model).eval()
    example = torch.from_numpy(np.ascontiguousarray(source))
    names = ([source_input], list(ENCODER_OUTPUTS))
    trace_to_onnx(
        encoder, (example,), names, ({0: batch, 1: source_length},), files.graph(ENCODER_FILE)
    )
    with torch.inference_mode():
        memory, mask = encoder(example)
    prefix = torch.from_numpy(np.ascontiguousarray(target))
    free = [{0: batch, 1: length} for length in (target_length, source_length, source_length)]
    trace_to_onnx(
        TargetDecoder(model).eval(),
        (prefix, memory.clone(), mask.clone()),
        (list(DECODER_INPUTS), list(DECODER_OUTPUTS)),
        tuple(free),
        files.graph(DECODER_FILE),
    )


def _check_rows(run: Run) -> tuple[pd.DataFrame, Any, str]:
    """Up to CHECK_ROWS rows of the test split (val, then train, when it has none), their
    teacher-forced (source, target prefix) tensors, and the split's name."""
    from megalith.export import CHECK_ROWS

    table, splits = run.data_splits()
    for split in ("test", "val", "train"):
        frame = splits.get(split)
        if frame is None or len(frame) == 0:
            continue
        rows = frame.iloc[:CHECK_ROWS]
        origin = f"{table.origin} ({split} split)"
        tensors = run.preprocessor.transform(rows, base_dir=table.base_dir, origin=origin)
        if len(tensors) > 0:
            return rows, teacher_forcing(tensors, run.preprocessor.output_specs[0].name), split
    raise RunError(f"{run.path}: the run's data has no rows to check the export on")


def _check_texts(run: Run, files: BundleFiles, rows: pd.DataFrame) -> dict[str, Any]:
    """The bundle's predictions must equal the run's, text for text, at every batch size."""
    from megalith.runtime.predictor import Bundle

    sources = rows.drop(columns=[c.name for c in run.config.outputs], errors="ignore")
    expected = run.predict(sources)
    bundle = Bundle(files.path)
    for batch_size in BATCH_SIZES:
        found = bundle.predict(sources, batch_size=batch_size)
        if list(found.columns) != list(expected.columns):
            raise RunError(
                f"export check failed: the bundle predicts the columns {list(found.columns)}, "
                f"the run {list(expected.columns)}; the bundle was not written"
            )
        for column in expected.columns:
            _same_texts(column, expected[column].tolist(), found[column].tolist(), batch_size)
    beams = int(getattr(run.config.model, "beam_size", 1))
    return {
        "rows": len(sources),
        "batch_sizes": list(BATCH_SIZES),
        "beam_size": beams,
        "identical_texts": True,
    }


def _same_texts(column: str, expected: list[Any], found: list[Any], batch_size: int) -> None:
    differing = [i for i, (e, f) in enumerate(zip(expected, found, strict=True)) if e != f]
    if differing:
        shown = "; ".join(f"row {i}: {found[i]!r} instead of {expected[i]!r}" for i in differing)
        raise RunError(
            f"export check failed: output '{column}': ONNX Runtime's decoding writes a different "
            f"text than the run on {len(differing)} of {len(expected)} rows at batch size "
            f"{batch_size} ({shown[: 80 * _SHOWN]}); the bundle was not written"
        )


def _describe_seq2seq(
    description: dict[str, Any], run: Run, model: Seq2Seq, source: InputSpec
) -> None:
    """bundle.json of a seq2seq run, changed in place: the task, the two graphs instead of
    `model`, and how they decode."""
    del description["model"]
    longest_source = source.shape[0]
    longest_target = model.target_positions.max_length
    vocabulary = model.target_embedding.num_embeddings
    dim = model.target_embedding.embedding_dim
    (source_input,) = [entry["graph_name"] for entry in description["inputs"]]
    memory = f"(batch, source_length, {dim}) float32"
    mask = "(batch, source_length) bool: True at real source tokens"
    output = description["outputs"][0]
    output["graph_output"] = (
        f"text written by beam search over decoder.onnx's next-token logits (batch, "
        f"target_length, {vocabulary})"
    )
    description["task"] = "seq2seq"
    description["graphs"] = {
        "encoder": {
            "file": ENCODER_FILE,
            "inputs": {source_input: f"source ids (batch, source_length <= {longest_source})"},
            "outputs": {"memory": memory, "source_mask": mask},
        },
        "decoder": {
            "file": DECODER_FILE,
            "inputs": {
                "target": f"ids written so far (batch, target_length <= {longest_target}) int64, "
                f"the begin id ({BOS}) first",
                "memory": memory,
                "source_mask": mask,
            },
            "outputs": {"logits": f"(batch, target_length, {vocabulary}) float32"},
        },
    }
    description["decoding"] = {
        "beam_size": int(getattr(run.config.model, "beam_size", 1)),
        "max_new_tokens": steps(model),
        "scores": "total log-probability; the best beam by total / length without end id",
        "ids": {"pad": PAD, "begin": BOS, "end": EOS},
    }
