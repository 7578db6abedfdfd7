"""Megalith's training loop against a plain compiled PyTorch loop on a GPU, same module and data:
a GPT-2-small-shaped language model (tokens/s and model FLOPs utilisation) and a
ResNet-50-shaped CNN at 224x224 (images/s).

Both loops use bf16 autocast, torch.compile and fused AdamW; the plain one is what a careful user
writes by hand (channels-last for the CNN). Data is random and already on the device, so the
figures are the model's and the loop's, not the disk's. Prints one JSON object per workload.

    python benchmarks/gpu_throughput.py                       # both, on cuda
    python benchmarks/gpu_throughput.py --workloads gpt2 --steps 50 --warmup 15
    python benchmarks/gpu_throughput.py --tiny         # small shapes on any device (smoke test)

MFU counts 6 * N + 12 * layers * dim * context FLOPs per token (forward and backward, N the
parameters without the position embeddings; the second term is attention), against
--peak-tflops (989 for an H100 SXM in dense bf16).
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from megalith.config import validate_config
from megalith.data.specs import InputSpec, OutputSpec
from megalith.data.tensors import TensorTable
from megalith.models import build_model
from megalith.training.callbacks import Callback
from megalith.training.loop import TrainJob, train_loop


@dataclass
class Workload:
    name: str
    raw: dict[str, Any]
    inputs: list[InputSpec]
    outputs: list[OutputSpec]
    batch_size: int
    unit: str  # what one row counts as: tokens (per row: context) or images
    per_row: int


def workloads(tiny: bool) -> dict[str, Workload]:
    context, layers, heads, dim, vocab = (64, 2, 2, 64, 512) if tiny else (1024, 12, 12, 768, 50304)
    side, batch_images = (32, 8) if tiny else (224, 256)
    resnet = (
        {"channels": [8, 16], "blocks": [1, 1], "bottleneck": True}
        if tiny
        else {"channels": [256, 512, 1024, 2048], "blocks": [3, 4, 6, 3], "bottleneck": True}
    )
    return {
        "gpt2": Workload(
            "gpt2",
            {
                "data": {"source": "unused", "format": "text"},
                "outputs": [{"name": "text", "type": "text"}],
                "model": {
                    "arch": "gpt",
                    "context": context,
                    "layers": layers,
                    "heads": heads,
                    "dim": dim,
                    "dropout": 0.0,
                },
            },
            [],
            [OutputSpec("text", "text", num_classes=vocab)],
            batch_size=4 if tiny else 16,
            unit="tokens",
            per_row=context,
        ),
        "resnet50": Workload(
            "resnet50",
            {
                "data": {"source": "unused"},
                "inputs": [{"name": "image", "type": "image"}],
                "outputs": [{"name": "label", "type": "category"}],
                "model": {"arch": "resnet", **resnet},
            },
            [InputSpec("image", "image", shape=(3, side, side), mean=(0.5,) * 3, std=(0.25,) * 3)],
            [OutputSpec("label", "category", num_classes=1000)],
            batch_size=batch_images,
            unit="images",
            per_row=1,
        ),
    }


def random_table(work: Workload, rows: int, device: torch.device) -> TensorTable:
    gen = torch.Generator().manual_seed(0)
    if work.name == "gpt2":
        vocab, context = work.outputs[0].num_classes, work.per_row
        tokens = torch.randint(4, vocab, (rows, context + 1), generator=gen)
        inputs, targets = {"text": tokens[:, :-1]}, {"text": tokens[:, 1:]}
    else:
        shape = (rows, *work.inputs[0].shape)
        images = torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)
        inputs, targets = {"image": images}, {"label": torch.randint(0, 1000, (rows,))}
    table = TensorTable(inputs=inputs, targets=targets, rows=np.arange(rows))
    return table.to(device)


def plain_loop(
    model: torch.nn.Module,
    table: TensorTable,
    work: Workload,
    steps: int,
    warmup: int,
    device: torch.device,
    dtype: torch.dtype | None,
    compile_model: bool,
) -> float:
    """Seconds for `steps` steps after `warmup` (compilation included in the warm-up)."""
    model = model.to(device)
    if work.name == "resnet50" and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if compile_model else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, fused=device.type in ("cuda", "cpu"))
    ((name, target),) = table.targets.items()
    model.train()
    start = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            _sync(device)
            start = time.perf_counter()
        index = torch.arange(step * work.batch_size, (step + 1) * work.batch_size, device=device)
        batch = {k: v[index] for k, v in table.inputs.items()}
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            out = forward(batch)[name]
            if work.name == "gpt2":
                loss = F.cross_entropy(out.flatten(0, 1).float(), target[index].flatten())
            else:
                loss = F.cross_entropy(out.float(), target[index])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    _sync(device)
    return time.perf_counter() - start


class StepClock(Callback):
    """The wall time between the end of step `warmup` and the end of step `warmup + steps`."""

    def __init__(self, warmup: int, steps: int, device: torch.device) -> None:
        self.warmup, self.last, self.device = warmup, warmup + steps, device
        self.start = self.seconds = 0.0

    def on_step_end(self, step: int, epoch: int, samples: int, loss: float | None) -> None:
        if step == self.warmup:
            _sync(self.device)
            self.start = time.perf_counter()
        elif step == self.last:
            _sync(self.device)
            self.seconds = time.perf_counter() - self.start


def megalith_loop(
    model: torch.nn.Module,
    table: TensorTable,
    work: Workload,
    raw: dict[str, Any],
    steps: int,
    warmup: int,
    device: torch.device,
    precision: str,
    compile_model: bool,
) -> float:
    config = validate_config(raw)
    train = config.train.model_copy(
        update={
            "epochs": 1,
            "batch_size": work.batch_size,
            "device": str(device),
            "precision": precision,
            "compile": compile_model,
            "log_every": 10**9,  # no loss read back (a sync) inside the measured steps
        }
    )
    train = train.model_copy(update={"optimizer": train.optimizer.model_copy(update={"lr": 3e-4})})
    clock = StepClock(warmup, steps, device)
    with tempfile.TemporaryDirectory() as folder:
        job = TrainJob(
            model=model,
            outputs=config.outputs,
            specs=work.outputs,
            train=table,
            val=None,
            config=train,
            seed=0,
            checkpoints=Path(folder) / "checkpoints",
            callbacks=[clock],
        )
        train_loop(job)
    return clock.seconds


def flops_per_token(model: torch.nn.Module, work: Workload) -> float:
    positions = sum(p.numel() for n, p in model.named_parameters() if "positions" in n)
    n = sum(p.numel() for p in model.parameters()) - positions
    cfg = work.raw["model"]
    return 6 * n + 12 * cfg["layers"] * cfg["dim"] * cfg["context"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workloads", nargs="*", default=["gpt2", "resnet50"])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--tiny", action="store_true", help="small shapes, for any device")
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda" and not args.tiny:
        parser.error("no CUDA device: this benchmark is for GPUs (use --tiny for a smoke test)")
    cuda = device.type == "cuda"
    dtype, precision = (torch.bfloat16, "bf16") if cuda else (None, "fp32")
    for name in args.workloads:
        work = workloads(args.tiny)[name]
        raw = copy.deepcopy(work.raw)
        torch.manual_seed(0)
        model = build_model(validate_config(raw).model, work.inputs, work.outputs)
        rows = work.batch_size * (args.warmup + args.steps + 1)
        table = random_table(work, rows, device)
        plain = plain_loop(
            copy.deepcopy(model), table, work, args.steps, args.warmup, device, dtype, cuda
        )
        ours = megalith_loop(
            copy.deepcopy(model), table, work, raw, args.steps, args.warmup, device, precision, cuda
        )
        per_step = work.batch_size * work.per_row
        result: dict[str, Any] = {
            "workload": name,
            f"plain_{work.unit}_per_s": round(per_step * args.steps / plain),
            f"megalith_{work.unit}_per_s": round(per_step * args.steps / ours),
            "ratio": round(plain / ours, 3),
            "batch_size": work.batch_size,
            "steps": args.steps,
            "device": torch.cuda.get_device_name(device) if cuda else platform.machine(),
            "torch": torch.__version__,
            "tiny": args.tiny,
        }
        if work.name == "gpt2":
            flops = flops_per_token(model, work)
            for who, seconds in (("plain", plain), ("megalith", ours)):
                per_second = per_step * args.steps / seconds
                result[f"{who}_mfu"] = round(per_second * flops / (args.peak_tflops * 1e12), 4)
            result["parameters"] = sum(p.numel() for p in model.parameters())
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
