"""Runs that survive a dead process: torchrun's elastic agent restarts the group, the run resumes.

`megalith train CONFIG --devices N --max-restarts R` (or `torchrun --max-restarts R ... -m
megalith train CONFIG`) lets torchrun's agent restart every worker when one dies. A restarted
worker sees TORCHELASTIC_RESTART_COUNT > 0 and continues its run directory from the last
complete checkpoint by itself. So that a restart never resumes an unrelated run, the first
attempt records torchrun's run id (TORCHELASTIC_RUN_ID, one per elastic job) in
`checkpoints/elastic.json`; a restart resumes only a directory holding its own run id.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from megalith.runs import RunDir

OWNER_FILE = "elastic.json"


@dataclass(frozen=True)
class Attempt:
    """Which try of an elastic job this process belongs to (torchrun's environment)."""

    run_id: str | None = None
    """TORCHELASTIC_RUN_ID: the same for every worker and every restart of one job."""
    restart: int = 0
    """TORCHELASTIC_RESTART_COUNT: 0 on the first try, then 1, 2, ... after each restart."""

    @classmethod
    def from_env(cls) -> Attempt:
        run_id = os.environ.get("TORCHELASTIC_RUN_ID")
        return cls(
            run_id=run_id if run_id not in (None, "", "none") else None,
            restart=int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0),
        )

    @property
    def restarted(self) -> bool:
        return self.restart > 0 and self.run_id is not None

    def owns(self, run_dir: RunDir) -> bool:
        """True when `run_dir` was started by an earlier try of this same elastic job."""
        path = run_dir.checkpoints / OWNER_FILE
        if self.run_id is None or not path.is_file():
            return False
        try:
            return bool(json.loads(path.read_text()).get("run_id") == self.run_id)
        except (OSError, ValueError, AttributeError):
            return False

    def claim(self, run_dir: RunDir) -> None:
        """Record this job's run id in a freshly started run directory (rank 0, first try)."""
        if self.run_id is None:
            return
        run_dir.checkpoints.mkdir(parents=True, exist_ok=True)
        record = {"run_id": self.run_id, "restart": self.restart}
        run_dir.write_json(run_dir.checkpoints / OWNER_FILE, record)

    def find_own_run(self, root: Path, name: str) -> RunDir | None:
        """The run directory `root/NAME-*` this job started on an earlier try (no -o given)."""
        if self.run_id is None or not root.is_dir():
            return None
        for path in sorted(root.glob(f"{name}-*"), reverse=True):
            if path.is_dir() and self.owns(RunDir(path)):
                return RunDir(path)
        return None


def restart_plan(attempt: Attempt, run_dir: RunDir) -> tuple[bool, bool]:
    """(resume, overwrite) for a run directory on this try.

    A restart resumes its own directory when a checkpoint is there, and starts it again from
    scratch (overwriting its own files) when the first try died before any checkpoint; a
    first try, or a directory of another job, follows the usual rules (neither).
    """
    if not attempt.restarted or not attempt.owns(run_dir):
        return False, False
    has_checkpoint = any(p.name.startswith("step-") for p in run_dir.checkpoints.iterdir())
    return has_checkpoint, not has_checkpoint


def run_dir_on_this_try(name: str, output_dir: str | Path | None) -> tuple[RunDir, bool, bool]:
    """(run directory, resume, overwrite) for a config's run on this try of a torchrun job.

    Without --output-dir, a restart finds the runs/NAME-TIME directory its first try started
    (a new timestamp would start the run over elsewhere)."""
    attempt = Attempt.from_env()
    own = None if output_dir else attempt.find_own_run(Path("runs"), name)
    run_dir = RunDir(Path(output_dir)) if output_dir else own or RunDir.default_for(name)
    return (run_dir, *restart_plan(attempt, run_dir))


def restart_note(resuming: bool) -> str:
    """The log line of a restarted try: which restart, and where training continues."""
    where = "continuing from the last complete checkpoint" if resuming else "starting at step 0"
    return f"[yellow]restarted[/] by torchrun (restart {Attempt.from_env().restart}): {where}"


def describe_world_change(
    written_by: int | None, world_size: int, batch_size: int, private: bool = False
) -> str | None:
    """A log line when a run resumes on another number of processes than wrote its checkpoint.

    `train.batch_size` is the global batch: each process takes every world_size-th row of it
    (Distributed.local_part), so the optimizer steps, the learning-rate schedule and the epoch's
    row order stay as configured; only the rows per process change. A `private` run's Poisson
    batches are drawn per process (megalith.training.private_ddp): each row keeps its rate, but
    the rows drawn from here on differ from the run's had it not moved.
    """
    if written_by is None or written_by == world_size:
        return None
    share = batch_size / world_size
    kept = (
        "each row is still drawn at the same rate and the epsilon is unchanged, but the "
        f"batches drawn from here on are not those of {written_by} process(es): not an exact "
        "resume"
        if private
        else "the learning-rate schedule and the epoch's row order are unchanged"
    )
    return (
        f"resuming on {world_size} process(es); the checkpoint was written by {written_by}: "
        f"the global batch stays {batch_size} rows per step (about {share:g} per process), " + kept
    )
