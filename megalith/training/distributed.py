"""Several processes, one model: DDP or FSDP through PyTorch's own launcher (torchrun).

`megalith train CONFIG --devices N` re-runs the same command under `torch.distributed.run`
with N processes on this machine; `torchrun [--nnodes ... --rdzv-endpoint ...] -m megalith train
CONFIG` does the same across machines. Each process trains on its share of every global batch
(`train.batch_size` is the global batch), gradients are averaged by DDP, and only rank 0 writes
the run directory, so a run on N processes follows the single-process run closely.

With `train.strategy: fsdp` every process keeps only its shard of each weight, gradient and
optimizer moment (PyTorch's `fully_shard`, one unit per Transformer / ResNet block plus the
root), so a model that does not fit one device trains across several. Each process writes its
own shards of a checkpoint (megalith.training.sharded_checkpoint); the final weights are gathered
into whole tensors, so model.safetensors is the same file a single process writes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from megalith.errors import ConfigError

_groups: dict[str, dist.ProcessGroup] = {}
_timeouts: dict[str, timedelta] = {}


@dataclass(frozen=True)
class Distributed:
    """This process's place among the training processes (a single process by default)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    sharded: bool = False
    """FSDP (`train.strategy: fsdp`): weights, gradients and optimizer state are sharded."""

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> Distributed:
        """Read RANK / WORLD_SIZE / LOCAL_RANK as set by torchrun."""
        return cls(
            rank=int(os.environ.get("RANK", 0)),
            world_size=int(os.environ.get("WORLD_SIZE", 1)),
            local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        )

    def device(self, device: torch.device) -> torch.device:
        """One GPU per process: cuda:LOCAL_RANK; CPUs are shared."""
        if self.enabled and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device

    def start(self, device: torch.device, timeout: float = 1800.0) -> dist.Store | None:
        """Join the process group (NCCL on GPUs, Gloo on CPUs); returns its key-value store.

        Args:
            timeout: seconds a collective waits for the other processes before it fails
                (`train.collective_timeout`); joining the group may take longer.
        """
        if not self.enabled or dist.is_initialized():
            return None
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        joining = timedelta(seconds=max(timeout, 600.0))
        store, rank, world_size = next(dist.rendezvous("env://", timeout=joining))
        # a group restarted by torchrun shares its store with the dead one: a fresh prefix keeps
        # its processes from reading the dead ones' addresses and waiting on them
        restart = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
        store = dist.PrefixStore(f"megalith/restart-{restart}", store)
        dist.init_process_group(
            backend=backend,
            store=store,
            rank=rank,
            world_size=world_size,
            timeout=timedelta(seconds=timeout),
        )
        _timeouts["collective"] = timedelta(seconds=timeout)
        return store

    def stop(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()
            _groups.clear()  # ended with the default group

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def broadcast(self, value: Any) -> Any:
        """Rank 0's value, on every rank (any picklable object made by our own code)."""
        if not self.enabled:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def sum(self, total: torch.Tensor, count: int) -> tuple[torch.Tensor, int]:
        """A running sum and a count added up over every rank."""
        if not self.enabled:
            return total, count
        both = torch.stack([total.double(), torch.tensor(count, device=total.device).double()])
        dist.all_reduce(both)
        return both[0], int(both[1])

    def smallest(self, value: torch.Tensor) -> torch.Tensor:
        """The smallest of every rank's `value` (a one-element tensor on this rank's device)."""
        if self.enabled:
            value = value.clone()
            dist.all_reduce(value, op=dist.ReduceOp.MIN)
        return value

    def largest(self, value: int) -> int:
        """The largest of every rank's `value` (a collective), over a Gloo group of its own:
        a CPU all-reduce of one number, with no wait for a GPU."""
        if not self.enabled:
            return value
        both = torch.tensor([value])
        dist.all_reduce(both, op=dist.ReduceOp.MAX, group=gloo_group("agree"))
        return int(both[0])

    def local_part(self, index: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a global batch: every world_size-th row from its rank on."""
        return index[self.rank :: self.world_size] if self.enabled else index

    def wrap(
        self,
        model: nn.Module,
        device: torch.device,
        dtype: torch.dtype | None = None,
        private: bool = False,
    ) -> nn.Module:
        """DistributedDataParallel around the model, or the model sharded in place (FSDP); the
        model itself when single-process. Sharded with a mixed-precision `dtype`, weights are
        gathered in that type (half the traffic) while gradients are reduced in fp32. A
        `private` (DP-SGD) model gets Opacus's wrapper (megalith.training.private_ddp)."""
        if not self.enabled:
            return model
        if private:
            from megalith.training.private_ddp import private_ddp

            return private_ddp(model)
        if self.sharded:
            from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

            # a binary / number head returns its (B, 1) logits squeezed, a view; the loop never
            # changes an output in place, so FSDP's warning about it (once per step per process,
            # hundreds of lines) would only bury the log
            warnings.filterwarnings(
                "ignore", r"FSDP2-wrapped module .* returned a view tensor", UserWarning
            )
            # FSDP shards only contiguous parameters: convolution weights stored channels-last
            # (megalith.models.cnn.use_channels_last) go back to the default layout
            model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
            policy = MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32)
            # one unit per block: only one block's whole weights exist at a time
            for module in model.modules():
                if module is not model and hasattr(type(module), "recompute"):
                    fully_shard(module, mp_policy=policy)
            fully_shard(model, mp_policy=policy)
            return model
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def full_weights(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """Every weight whole, on the CPU. Sharded: a collective, so every rank calls it."""
        return {name: whole(t).cpu().contiguous() for name, t in model.state_dict().items()}

    def load_full_weights(self, model: nn.Module, weights: dict[str, torch.Tensor]) -> None:
        """Whole weights into the model (each rank keeps its shard when sharded)."""
        if not self.sharded:
            model.load_state_dict(weights)
            return
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_model_state_dict,
        )

        whole_weights: dict[str, Any] = dict(weights)
        set_model_state_dict(model, whole_weights, options=StateDictOptions(full_state_dict=True))

    def full_optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """optimizer.state_dict() with every moment whole (a collective when sharded)."""
        state = optimizer.state_dict()
        if not self.sharded:
            return state
        state["state"] = {
            param: {key: whole(value) for key, value in values.items()}
            for param, values in state["state"].items()
        }
        return state

    def load_optimizer_state(self, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
        """A state from full_optimizer_state back in, each moment cut to this rank's shard."""
        if self.sharded:
            from torch.distributed.tensor import DTensor, distribute_tensor

            params = [p for group in optimizer.param_groups for p in group["params"]]
            for index, values in state["state"].items():
                param = params[int(index)]
                if not isinstance(param, DTensor):
                    continue
                for key, value in values.items():
                    if torch.is_tensor(value) and value.shape == param.shape:
                        values[key] = distribute_tensor(
                            value.to(param.device), param.device_mesh, param.placements
                        )
        optimizer.load_state_dict(state)


def gloo_group(name: str) -> dist.ProcessGroup:
    """A Gloo group of every training process, one per `name` (collectives of different names
    may run on different threads at once), with the run's `train.collective_timeout`; made on
    first use, a collective: every process asks for it at the same point."""
    if name not in _groups:
        _groups[name] = dist.new_group(backend="gloo", timeout=_timeouts.get("collective"))
    return _groups[name]


def whole(tensor: torch.Tensor) -> torch.Tensor:
    """A sharded tensor (DTensor) gathered whole; any other tensor as it is.

    DTensors exist only once torch.distributed.tensor is loaded (FSDP loads it), so this
    never imports it: builds of torch without distributed support have none.
    """
    module = sys.modules.get("torch.distributed.tensor")
    if module is not None and isinstance(tensor, module.DTensor):
        return tensor.full_tensor()
    return tensor.detach()


def launch(devices: int, argv: Sequence[str], max_restarts: int = 0) -> int:
    """Run `megalith ARGV` as `devices` processes under torchrun; returns its exit code.

    With `max_restarts`, torchrun's elastic agent restarts every process up to that many times
    when one fails (megalith.training.elastic: the run continues from its last checkpoint)."""
    if devices < 1:
        raise ConfigError(f"--devices must be at least 1 (got {devices})")
    if max_restarts < 0:
        raise ConfigError(f"--max-restarts must be 0 or more (got {max_restarts})")
    if devices > 1 and torch.cuda.is_available() and devices > torch.cuda.device_count():
        raise ConfigError(
            f"--devices {devices}: only {torch.cuda.device_count()} CUDA device(s) are visible"
        )
    command = [
        sys.executable,
        "-m",
        "megalith.training.torchrun",  # torch.distributed.run, without its traceback
        "--standalone",
        f"--nproc_per_node={devices}",
        f"--max-restarts={max_restarts}",
        "-m",
        "megalith",
        *argv,
    ]
    from megalith.training.worker_errors import ERRORS_DIR

    with tempfile.TemporaryDirectory(prefix="megalith-errors-") as errors:  # one line per rank
        process = subprocess.Popen(
            command, env={**launch_env(devices, os.environ), ERRORS_DIR: errors}
        )
        return wait_forwarding_signals(process)


FORWARDED = {signal.SIGINT: signal.SIGINT, signal.SIGTERM: signal.SIGTERM}
"""Signals the launching command passes on to torchrun (which stops its processes, each
writing a checkpoint and the resume command), as the signal torchrun is sent."""
if hasattr(signal, "SIGHUP"):
    FORWARDED[signal.SIGHUP] = signal.SIGTERM  # a closed terminal: stop as after SIGTERM


def wait_forwarding_signals(process: subprocess.Popen[Any]) -> int:
    """`process`'s exit code, passing SIGINT / SIGTERM / SIGHUP sent to this command on to it
    and waiting for it to stop. Without this, SIGTERM to `megalith train --devices N` alone
    (`kill PID`, a scheduler) ended the command and left torchrun and its processes training
    on; and SIGINT made subprocess.call SIGKILL torchrun, whose store the processes still
    needed to stop (their tracebacks). torchrun acts on the first signal only
    (megalith.training.torchrun), so one that also reached it (Ctrl-C in a terminal signals
    the whole process group) is not acted on twice."""
    if threading.current_thread() is not threading.main_thread():
        return process.wait()

    def forward(number: int, _frame: Any) -> None:
        if process.poll() is None:
            process.send_signal(FORWARDED[signal.Signals(number)])

    previous = {number: signal.signal(number, forward) for number in FORWARDED}
    try:
        return process.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def launch_env(devices: int, environ: Any) -> dict[str, str]:
    """The environment torchrun starts with: `environ`, with OMP_NUM_THREADS at 1 for several
    processes unless it is set, which is torchrun's own default, minus its banner of warnings
    on every run (train.threads still sets a process's threads)."""
    env = dict(environ)
    if devices > 1:
        env.setdefault("OMP_NUM_THREADS", "1")
    return env
