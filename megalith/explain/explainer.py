"""The explain loop: encode rows, choose the explained class, attribute, map back, check."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from megalith.errors import RunError, did_you_mean
from megalith.explain.attention import AttentionMap, feature_attention
from megalith.explain.mapping import (
    column_values,
    pixel_map,
    text_words,
    unit_ranges,
    unit_values,
    valid_units,
    word_values,
)
from megalith.explain.methods import (
    METHODS,
    Attributions,
    attribute,
    automatic_batch_size,
    baseline_outputs,
    output_at,
)
from megalith.explain.pretrained import forward_for, pretrained_attention, spaces_for
from megalith.explain.sanity import (
    RANDOMISATION_ROWS,
    flattened,
    randomisation_summary,
    randomised_attributions,
    rank_correlations,
    valid_elements,
)
from megalith.explain.space import InputSpace, explained_output, first_rows
from megalith.explain.timing import PartTimes
from megalith.explain.trust import (
    DELETION_ROWS,
    additivity_summary,
    completeness_summary,
    deletion_curves,
    deletion_summary,
)
from megalith.models.blocks import FeatureModel
from megalith.models.pretrained import PretrainedModel

if TYPE_CHECKING:
    import pandas as pd

    from megalith.explain import Explanations, ImageMap, Run

BASELINES = (
    "number 0 (a standardised number's train mean), binary the negative value, category the "
    "embedding of its most frequent train value, text the padding embedding (zeros), image "
    "black, sequence 0"
)


class Explainer:
    """Explains one output of a run with one method (see explain_run for the arguments)."""

    def __init__(
        self,
        run: Run,
        method: str,
        output_name: str | None,
        target: str | None,
        steps: int,
        internal_batch_size: int | None,
    ) -> None:
        self.run, self.method, self.steps = run, method, steps
        self.internal_batch_size = internal_batch_size
        preprocessor = run.preprocessor
        names = [spec.name for spec in preprocessor.output_specs]
        name = output_name or names[0]
        if name not in names:
            raise RunError(
                f"--output-name {name}: the run has no such output{did_you_mean(name, names)}; "
                f"its outputs: {', '.join(names)}"
            )
        self.index = names.index(name)
        self.output = preprocessor.output_specs[self.index]
        self.encoder: Any = preprocessor.outputs[self.index]
        self.classes = _classes(self.encoder, self.output.type)
        self.target = target
        if target is not None:
            if self.output.type == "number":
                raise RunError(
                    f"--target {target}: output '{name}' is a number, explained by its predicted "
                    "value; leave --target out"
                )
            if target not in [str(c) for c in self.classes]:
                known = [str(c) for c in self.classes]
                raise RunError(
                    f"--target {target}: not a class of output '{name}'"
                    f"{did_you_mean(target, known)}; its classes: {', '.join(known[:20])}"
                )
        self.specs = preprocessor.input_specs
        self.model = run.model.eval()  # a FeatureModel or a PretrainedModel: check_supported
        self.forward = forward_for(self.model, self.specs, self.output)
        self.attention = True
        """Record the attention maps of Transformer-encoded inputs."""
        self.maps: list[AttentionMap] = []
        self.deletion_rows = DELETION_ROWS
        """Rows the deletion check still takes (it checks the first DELETION_ROWS)."""
        self.randomisation: np.ndarray | None = None
        """(rows,) the model-randomisation rank correlation of the first rows."""
        self.times = PartTimes()
        """Seconds per part, summed over the passes (summary.json's seconds_by_part)."""

    def explain(
        self, frame: pd.DataFrame, base_dir: Path | None, origin: str, rows_per_pass: int
    ) -> Explanations:
        from megalith.explain import Explanations

        rows: list[dict[str, Any]] = []
        images: list[ImageMap] = []
        columns, gaps, used, attributed, random = [], [], [], [], []
        for start in range(0, len(frame), rows_per_pass):
            part = frame.iloc[start : start + rows_per_pass]
            with self.times.part("encode"):
                preprocessor = self.run.preprocessor
                encoded = preprocessor.encode_inputs(part, base_dir=base_dir, origin=origin)
            found = self._explain_pass(part, encoded, rows, images)
            columns.append(found["columns"])
            attributed.append(found["attributed"])
            random.append(found["random"])
            if found["gap"] is not None:
                gaps.append(found["gap"])
            if found["steps"] is not None:
                used.append(found["steps"])
        summary = self._summary(
            origin,
            np.concatenate(columns),
            torch.cat(attributed),
            torch.cat(random),
            torch.cat(gaps) if gaps else None,
            torch.cat(used) if used else None,
        )
        return Explanations(rows, summary, images, self.maps)

    def _explain_pass(
        self,
        part: pd.DataFrame,
        encoded: dict[str, np.ndarray],
        rows: list[dict[str, Any]],
        images: list[ImageMap],
    ) -> dict[str, Any]:
        model, times = self.model, self.times
        with times.part("predict"), torch.no_grad():
            outputs = model({k: torch.as_tensor(v) for k, v in encoded.items()})
            decoded = self.encoder.decode(outputs[self.output.name])
            target = self._target(decoded)
            spaces = spaces_for(model, self.specs, encoded)
            if self.internal_batch_size is None:
                self.internal_batch_size = automatic_batch_size(self.forward, spaces, target)
            explained = self._explained(outputs, spaces, target)
            at_baseline = baseline_outputs(self.forward, spaces, target)
        with times.part(self.method):  # Integrated Gradients: with its steps raised
            found = attribute(
                self.method,
                self.forward,
                spaces,
                target,
                steps=self.steps,
                internal_batch_size=self.internal_batch_size,
                change=explained - at_baseline,
            )
        with times.part("attention"):
            self._record_attention(part, encoded)
        with times.part("mapping"):
            units = unit_values(spaces, found.values, self.method)
            columns = column_values(spaces, units)
        if self.randomisation is None:
            with times.part("randomisation"):
                self.randomisation = self._randomisation(spaces, target, found.values)
        checked = min(self.deletion_rows, len(part))  # the first rows: the check's sample
        self.deletion_rows -= checked
        with times.part("deletion"):
            attributed, random = deletion_curves(
                self.forward,
                first_rows(spaces, checked),
                None if target is None else target[:checked],
                units[:checked],
                valid_units(spaces)[:checked],
                internal_batch_size=self.internal_batch_size,
                ends=(explained[:checked], at_baseline[:checked]),
            )
        with times.part("mapping"):
            for i, label in enumerate(part.index):
                row = self._row(i, label, decoded, target, float(explained[i]), columns[i], found)
                if i < checked:
                    row["deletion"] = {
                        "area_attributed": float(attributed[i]),
                        "area_random": float(random[i]),
                    }
                row.update(self._details(part, i, spaces, units, found.values))
                rows.append(row)
            images.extend(_image_maps(part, spaces, found.values, self.method))
        return {
            "columns": columns,
            "attributed": attributed,
            "random": random,
            "gap": found.gap,
            "steps": found.steps,
        }

    def _explained(
        self, outputs: dict[str, torch.Tensor], spaces: list[InputSpace], target: Any
    ) -> torch.Tensor:
        """(B,) the explained output of the rows: from the prediction's own pass for a
        FeatureModel (the same function of the same numbers), else a pass of its own."""
        if isinstance(self.model, FeatureModel):
            out = explained_output(outputs[self.output.name], self.output)
            return out if target is None else out.gather(1, target.view(-1, 1)).squeeze(1)
        extras = tuple(s.extra for s in spaces)
        return output_at(self.forward, tuple(s.values for s in spaces), extras, target)

    def _record_attention(self, part: pd.DataFrame, encoded: dict[str, np.ndarray]) -> None:
        """Add the rows' attention maps of Transformer inputs (and pretrained models')."""
        model = self.model
        labels = [_plain(i) for i in part.index]
        if self.attention and isinstance(model, PretrainedModel):
            tokenizer = getattr(self.run.preprocessor.inputs[0], "tokenizer", None)
            self.maps += pretrained_attention(model, self.specs, tokenizer, encoded, labels)
        elif self.attention and isinstance(model, FeatureModel):
            inputs = self.run.preprocessor.inputs
            texts = {
                spec.name: [c if isinstance(c, str) else "" for c in part[spec.name]]
                for spec in self.specs
                if spec.type == "text" and spec.name in part
            }
            self.maps += feature_attention(model, self.specs, inputs, encoded, labels, texts)

    def _row(
        self,
        i: int,
        label: Any,
        decoded: dict[str, Any],
        target: torch.Tensor | None,
        explained: float,
        columns: np.ndarray,
        found: Attributions,
    ) -> dict[str, Any]:
        """Row i's object in explanations.jsonl, but for its deletion areas and details."""
        chosen = {} if target is None else {"class": _plain(self.classes[int(target[i])])}
        row: dict[str, Any] = {
            "row": _plain(label),
            "prediction": {key: _plain(value[i]) for key, value in decoded.items()},
            "explained": {"output": self.output.name, **chosen, "value": explained},
            "attributions": {spec.name: float(columns[j]) for j, spec in enumerate(self.specs)},
        }
        if found.gap is not None and found.steps is not None:
            row["integrated_gradients"] = {
                "steps": int(found.steps[i]),
                "completeness_gap": float(found.gap[i]),
            }
        elif found.gap is not None:
            row["kernel_shap"] = {"additivity_gap": float(found.gap[i])}
        return row

    def _randomisation(
        self, spaces: list[InputSpace], target: torch.Tensor | None, values: list[torch.Tensor]
    ) -> np.ndarray:
        """(rows,) the model-randomisation rank correlation of the first rows (sanity.py)."""
        count = min(RANDOMISATION_ROWS, len(values[0]))
        first = first_rows(spaces, count)
        randomised = randomised_attributions(
            self.model,
            self.specs,
            self.output,
            self.method,
            first,
            None if target is None else target[:count],
            steps=self.steps,
            internal_batch_size=self.internal_batch_size or 512,
        )
        trained = flattened([v[:count] for v in values])
        return rank_correlations(trained, randomised, valid_elements(first, self.method))

    def _target(self, decoded: dict[str, Any]) -> torch.Tensor | None:
        """(B,) class indices to explain: the chosen class, or each row's predicted one."""
        if self.output.type == "number":
            return None
        labels = [str(c) for c in self.classes]
        chosen = decoded[self.output.name] if self.target is None else None
        picks = [labels.index(str(c)) for c in chosen] if chosen is not None else None
        count = len(decoded[self.output.name])
        if picks is None:
            picks = [labels.index(str(self.target))] * count
        return torch.tensor(picks, dtype=torch.long)

    def _details(
        self,
        part: pd.DataFrame,
        i: int,
        spaces: list[InputSpace],
        units: torch.Tensor,
        attributions: list[torch.Tensor],
    ) -> dict[str, Any]:
        """A row's words (text) and steps (sequence): {"text": {col: [[word, value], ...]}}."""
        details: dict[str, dict[str, Any]] = {}
        for (start, end), space, encoder in zip(
            unit_ranges(spaces), spaces, self.run.preprocessor.inputs, strict=True
        ):
            name, kind = space.spec.name, space.spec.type
            values = units[i, start:end].numpy()
            if kind == "text":
                cell = part[name].iloc[i]
                text = "" if not isinstance(cell, str) else cell
                words = text_words(encoder.tokenizer, text, end - start)  # type: ignore[attr-defined]
                pairs = word_values(words, values)
                details.setdefault("text", {})[name] = [[w, v] for w, v in pairs]
            elif kind == "sequence":
                real = space.valid[i].numpy()
                details.setdefault("sequence", {})[name] = [float(v) for v in values[real]]
        return details

    def _summary(
        self,
        origin: str,
        columns: np.ndarray,
        attributed: torch.Tensor,
        random: torch.Tensor,
        gaps: torch.Tensor | None,
        used: torch.Tensor | None,
    ) -> dict[str, Any]:
        importance = np.abs(columns).mean(axis=0)
        order = np.argsort(-importance, kind="stable")
        trust: dict[str, Any] = {"deletion": deletion_summary(attributed, random)}
        if self.randomisation is not None:
            trust["randomisation"] = randomisation_summary(self.randomisation)
        if gaps is not None and used is not None:
            trust["completeness"] = completeness_summary(gaps, used)
        elif gaps is not None:
            trust["additivity"] = additivity_summary(gaps)
        return {
            "run": str(self.run.path),
            "data": origin,
            "rows": len(columns),
            "method": self.method,
            "method_name": METHODS[self.method],
            "output": self.output.name,
            "output_type": self.output.type,
            "target": self.target
            if self.target is not None
            else ("the predicted value" if self.output.type == "number" else "the predicted class"),
            "units": "logits" if self.output.type != "number" else f"{self.output.name} units",
            "baselines": BASELINES,
            "steps": self.steps if self.method == "ig" else None,
            "internal_batch_size": self.internal_batch_size,
            "seconds_by_part": self.times.as_json(),
            "global_importance": {self.specs[j].name: float(importance[j]) for j in order},
            "trust": trust,
        }


def _image_maps(
    part: pd.DataFrame, spaces: list[InputSpace], values: list[torch.Tensor], method: str
) -> list[ImageMap]:
    """Each image input's attribution map per row, with its pixels."""
    from megalith.explain import ImageMap

    found: list[ImageMap] = []
    for space, attribution in zip(spaces, values, strict=True):
        if space.spec.type == "image":
            maps = pixel_map(attribution, method)
            pixels = space.values.round().clamp(0, 255).to(torch.uint8).numpy()
            found.extend(
                ImageMap(_plain(label), space.spec.name, pixels[i], maps[i])
                for i, label in enumerate(part.index)
            )
    return found


def _classes(encoder: Any, kind: str) -> list[Any]:
    if kind == "category":
        return list(encoder.classes)
    if kind == "binary":
        return [encoder.codec.negative, encoder.codec.positive]
    return []


def _plain(value: Any) -> Any:
    """A JSON-safe Python value from a numpy / pandas scalar."""
    if isinstance(value, np.generic):
        return value.item()
    return value
