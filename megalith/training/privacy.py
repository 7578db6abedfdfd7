"""Differentially private training (DP-SGD) through Opacus: config, Poisson batches, accounting.

DP-SGD (Abadi et al., "Deep Learning with Differential Privacy", CCS 2016): each optimizer
step samples every train row independently with probability q (Poisson sampling), clips each
row's gradient to an L2 norm of `max_grad_norm`, sums them and adds Gaussian noise of standard
deviation `noise_multiplier * max_grad_norm`. Opacus computes the per-sample gradients
(GradSampleModule), clips and noises them (DPOptimizer), chooses the noise multiplier for a
target (epsilon, delta) over the planned steps and accounts for what was spent (its PRV, RDP or
GDP accountant). Megalith builds the Poisson batches itself from the in-memory table (as
`megalith.batching` builds shuffled ones): the loop keeps its own batches, and a batch is a
function of (seed, epoch, step) only, so a resumed run draws the same ones.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from megalith.configbase import ConfigModel
from megalith.data.tensors import TensorTable
from megalith.errors import ConfigError
from megalith.training.clipping_choice import ghost_clipping_for
from megalith.training.opacus_notes import OpacusNotes
from megalith.training.private_loss import private_loss
from megalith.training.rdp import rdp_epsilon

if TYPE_CHECKING:
    from opacus.accountants import IAccountant
    from opacus.optimizers import DPOptimizer


LARGEST_EPSILON = 100.0
"""The largest epsilon the prv and gdp accountants are asked for: beyond it Opacus's PRV epsilon
becomes infinite at the small noises the search tries (so the search never ends) and its GDP
epsilon fails (a root bracketed in [0, 500]); RDP's search ends at any epsilon."""


class PrivacyConfig(ConfigModel):
    """Differentially private training (DP-SGD through Opacus)."""

    epsilon: float = Field(3.0, gt=0)
    """The privacy budget epsilon to spend over the whole run (smaller: more private, more
    noise); the noise multiplier is chosen to reach it at the planned number of steps."""
    delta: float | None = Field(None, gt=0, lt=1)
    """The delta of (epsilon, delta)-DP; default 1 / (10 * train rows), ten times below 1/N."""
    max_grad_norm: float = Field(1.0, gt=0)
    """Every row's gradient is clipped to this L2 norm before the noise is added."""
    accountant: Literal["prv", "rdp", "gdp"] = "prv"
    """Opacus's privacy accountant: prv (tightest), rdp (Renyi DP) or gdp (Gaussian DP)."""
    public_data: str | None = None
    """A public table with the same columns: the preprocessing (normalisation statistics,
    category lists, vocabularies) is fitted on it instead of on the private train rows."""
    preprocessing: Literal["fitted", "fixed"] = "fitted"
    """fitted: the preprocessing is fitted on the train rows (or on public_data), outside the
    guarantee; fixed: nothing is fitted on private rows, each column's state comes from
    public_data or from `fixed` (megalith.training.fixed_preprocessing)."""
    fixed: dict[str, dict[str, Any]] = {}
    """preprocessing fixed: each column's preprocessing state, as preprocessor.json keeps it
    (a number's {mean, std, min, max}, a category's {vocabulary: [...]}, a target's
    {classes: [...]})."""
    text_embedding_scale: float = Field(0.01, gt=0)
    """A new model's text token embeddings start at this times PyTorch's N(0, 1), so that each
    row's clipped gradient reaches them (megalith.models.private_init); 1 keeps PyTorch's."""
    clipping: Literal["auto", "per_sample", "ghost"] = "auto"
    """How each row's gradient is clipped: per_sample materialises every row's gradient;
    ghost computes each row's gradient norm of linear and embedding layers without it and
    backpropagates twice (megalith.training.ghost_clipping), far cheaper for embeddings and
    wide linear layers; auto takes ghost when most weights are in Linear and Embedding layers
    (megalith.training.clipping_choice). Both give the same clipped sum, except
    that per_sample (Opacus) also counts an embedding's padding positions (docs/privacy.md)."""

    @model_validator(mode="after")
    def _fixed_needs_fixed(self) -> PrivacyConfig:
        if self.accountant != "rdp" and self.epsilon > LARGEST_EPSILON:
            raise ValueError(
                f"epsilon {self.epsilon:g} is above {LARGEST_EPSILON:g}, where accountant "
                f"{self.accountant}'s noise search does not end (Opacus's {self.accountant} "
                "epsilon turns infinite or fails at such small noise); set accountant: rdp "
                f"for an epsilon that large (it guarantees little), or an epsilon of "
                f"{LARGEST_EPSILON:g} or less"
            )
        if self.fixed and self.preprocessing != "fixed":
            raise ValueError(
                "fixed (the given preprocessing) is read only with preprocessing: fixed"
            )
        if self.fixed and self.public_data is not None:
            raise ValueError(
                "give either fixed (each column's state) or public_data (every column fitted "
                "on that table), not both: with public_data the fixed states would be ignored"
            )
        return self


def default_delta(rows: int) -> float:
    """delta = 1 / (10 N): a run may leak a row with probability well below one in N."""
    return 1.0 / (10 * max(rows, 1))


@dataclass
class PrivateTraining:
    """The state of one private run: sampling rate, noise multiplier and the accountant.

    Args:
        config: train.privacy.
        rows: train rows N.
        batch_size: expected rows per batch (train.batch_size); one optimizer step samples
            each row with probability q = batch_size * accumulation / N and splits the rows
            drawn into `accumulation` physical batches (Opacus's virtual steps).
        accumulation: train.grad_accumulation.
        seed: the run's seed; batch k of epoch e is a function of (seed, e, k).
        rank, world_size: this process among the DDP processes: each draws, at the global
            rate q, from its own 1/world_size of the rows (megalith.training.private_ddp).
    """

    config: PrivacyConfig
    rows: int
    batch_size: int
    accumulation: int
    seed: int
    rank: int = 0
    world_size: int = 1
    noise_multiplier: float | None = None
    planned_steps: int = 0
    accountant: IAccountant | None = field(default=None, repr=False)
    optimizer: DPOptimizer | None = field(default=None, repr=False)
    grad_sampler: nn.Module | None = field(default=None, repr=False)
    ghost: bool = False
    opacus: OpacusNotes = field(default_factory=OpacusNotes, repr=False)
    """What Opacus's warnings meant, said once at the end (megalith.training.opacus_notes)."""
    epsilon_notes: list[str] = field(default_factory=list, repr=False)

    @property
    def notes(self) -> list[str]:
        """Opacus's warnings about this run, in Megalith's words: its setup's, and the last
        epsilon computed's."""
        return [*self.opacus.notes, *self.epsilon_notes]

    @property
    def delta(self) -> float:
        return self.config.delta if self.config.delta is not None else default_delta(self.rows)

    @property
    def sample_rate(self) -> float:
        """q: the probability that a given row is in a given optimizer step's batch."""
        return min(1.0, self.batch_size * self.accumulation / self.rows)

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps per epoch: one epoch draws N rows in expectation."""
        return math.ceil(1.0 / self.sample_rate)

    @property
    def batches_per_epoch(self) -> int:
        return self.steps_per_epoch * self.accumulation

    def attach(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, total_steps: int
    ) -> tuple[Callable[..., Any], DPOptimizer]:
        """Per-sample gradients on `model` and a clipping, noising `optimizer` (Opacus).

        The noise multiplier is the smallest that keeps epsilon at the target after
        `total_steps` steps at this sample rate (opacus.accountants.utils.get_noise_multiplier).

        Returns:
            the module to call forward on (same weights as `model`) and the DPOptimizer.
        Raises:
            ConfigError: a layer of `model` has no per-sample gradient in Opacus.
        """
        from opacus.accountants import create_accountant

        self.choose_noise(total_steps)
        self.ghost = ghost_clipping_for(self.config.clipping, model)
        # Opacus's hooks on the first layer fire on inputs that need no gradient (data): that is
        # expected, and PyTorch's warning about it would repeat on every run
        warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients")
        try:
            self.grad_sampler = self._grad_sampler(model)
        except NotImplementedError as error:
            raise ConfigError(f"train.privacy: {error}; use a model without that layer") from error
        self.optimizer = self._optimizer(optimizer)
        with self._opacus_calls():
            self.accountant = create_accountant(mechanism=self.config.accountant)
        if self.ghost:
            from megalith.training.ghost_clipping import forward_without_hooks_when_empty

            return forward_without_hooks_when_empty(self.grad_sampler), self.optimizer
        return self.grad_sampler, self.optimizer

    def planned(self, epochs: int, max_steps: int | None) -> int:
        """The optimizer steps a run of `epochs` (capped at `max_steps`) takes, as the loop."""
        return int(min(self.steps_per_epoch * epochs, max_steps or math.inf))

    def choose_noise(self, total_steps: int) -> float:
        """The noise multiplier: the smallest that keeps epsilon at the target after
        `total_steps` steps at this sample rate (Opacus's get_noise_multiplier), searched once
        per plan. Called before the run directory is written, so that a budget no noise
        reaches leaves nothing behind.

        Raises:
            ConfigError: the target epsilon cannot be reached, naming the key.
        """
        from opacus.accountants.utils import get_noise_multiplier

        if self.noise_multiplier is not None and self.planned_steps == total_steps:
            return self.noise_multiplier
        steps = max(total_steps, 1)
        try:  # its warnings are about the trial noises of the search: none is the run's
            with OpacusNotes().catching(self.sample_rate, self.config.accountant):
                noise = get_noise_multiplier(
                    target_epsilon=self.config.epsilon,
                    target_delta=self.delta,
                    sample_rate=self.sample_rate,
                    steps=steps,
                    accountant=self.config.accountant,
                )
        except ValueError as error:  # "The privacy budget is too low."
            raise ConfigError(
                f"train.privacy.epsilon: {self.config.epsilon:g} cannot be reached in "
                f"{steps} steps at sample rate {self.sample_rate:.4g} with any noise "
                f"Opacus allows ({error}); raise epsilon, or train fewer epochs or smaller batches"
            ) from None
        self.noise_multiplier, self.planned_steps = float(noise), total_steps
        return self.noise_multiplier

    def _opacus_calls(self) -> AbstractContextManager[None]:
        """Around a call into Opacus: its warnings become this run's notes (said once)."""
        return self.opacus.catching(self.sample_rate, self.config.accountant)

    def _grad_sampler(self, model: nn.Module) -> nn.Module:
        from opacus import GradSampleModule

        from megalith.training.ghost_clipping import ghost_module

        if not self.ghost:
            return GradSampleModule(model, loss_reduction="mean")
        return ghost_module(model, self.config.max_grad_norm)

    def _optimizer(self, optimizer: torch.optim.Optimizer) -> DPOptimizer:
        from megalith.training.private_ddp import optimizer_class

        settings: dict[str, Any] = {
            "noise_multiplier": self.noise_multiplier,
            "max_grad_norm": self.config.max_grad_norm,
            "loss_reduction": "mean",
        }
        # Opacus divides by expected_batch_size times the virtual steps; ghost clipping counts
        # no virtual steps (GhostLoss adds each batch's clipped sum). Under DDP it is this
        # process's expected share, as in Opacus's make_private: the mean over processes of
        # each one's sum / (rows / world_size) is the sum over all rows / rows
        rows = self.batch_size * (self.accumulation if self.ghost else 1) / self.world_size
        chosen = optimizer_class(self.ghost, self.world_size)
        return chosen(optimizer, expected_batch_size=rows, **settings)

    def loss(self, loss: Callable[..., torch.Tensor]) -> Callable[..., Any]:
        """The loop's batch loss: `loss` guarded for empty batches (private_loss), or under
        ghost clipping each row's loss wrapped for its two backward passes (GhostLoss)."""
        if not self.ghost:
            return private_loss(loss)
        from megalith.training.ghost_clipping import GhostLoss, row_losses

        def ghost(features: Sequence[Any], outputs: Any, targets: Any, *rest: Any) -> GhostLoss:
            weights = rest[1] if len(rest) > 1 else None
            rows = row_losses(features, outputs, targets, weights)
            return GhostLoss(rows, self.grad_sampler, self.optimizer)

        return ghost

    def batches(
        self, table: TensorTable, epoch: int, start_batch: int, device: torch.device
    ) -> Iterator[TensorTable]:
        """The epoch's Poisson batches from batch `start_batch` on (to resume mid-epoch).

        Each optimizer step draws every row with probability q; its rows are split into
        `accumulation` physical batches (some may be empty, rarely: Opacus handles those).

        On several processes the global generator (dropout's, and rank 0's noise) is also
        seeded at each step from (seed, epoch, rank, step): the ranks' Poisson batches differ
        in size, so their generators part (dropout draws one number per unit and row), while a
        checkpoint keeps rank 0's state alone; resumed, the other ranks would drop other units
        than in a run left alone.
        """
        from megalith.training.private_ddp import rank_rows, rank_seed, step_seed

        generator = torch.Generator().manual_seed(rank_seed(self.seed, epoch, self.rank))
        own = rank_rows(self.rows, self.rank, self.world_size)
        for step in range(self.steps_per_epoch):
            drawn = torch.rand(len(own), generator=generator) < self.sample_rate
            if (step + 1) * self.accumulation <= start_batch:
                continue
            if self.world_size > 1:
                torch.manual_seed(step_seed(self.seed, epoch, self.rank, step))
            index = own[drawn.nonzero().squeeze(1)]
            for part in index.tensor_split(self.accumulation):
                batch = table.select(part)
                yield batch if batch.device == device else batch.to(device, non_blocking=True)

    def account_step(self) -> None:
        """One noisy step taken: the accountant adds it to the privacy spent."""
        assert self.accountant is not None and self.noise_multiplier is not None
        self.accountant.step(noise_multiplier=self.noise_multiplier, sample_rate=self.sample_rate)

    def epsilon(self) -> float:
        """The epsilon spent so far at this run's delta (0.0 before the first step).

        With the RDP accountant, each (noise, sample rate) pair's one-step Renyi DP is computed
        once and scaled by the steps taken (RDP composes additively): the epsilon Opacus's
        `RDPAccountant.get_epsilon` gives, without recomputing its orders every epoch."""
        if self.accountant is None or not self.accountant.history:
            return 0.0
        latest = OpacusNotes()  # only the figure reported last is said to be loose
        with latest.catching(self.sample_rate, self.config.accountant):
            if self.config.accountant == "rdp":
                spent = rdp_epsilon(self.accountant.history, self.delta)
            else:
                spent = float(self.accountant.get_epsilon(delta=self.delta))
        self.epsilon_notes = latest.notes
        return spent

    def state_dict(self) -> dict[str, Any]:
        """JSON for the checkpoint: the noise multiplier and the accountant's history."""
        history = self.accountant.history if self.accountant is not None else []
        return {
            "noise_multiplier": self.noise_multiplier,
            "history": [list(entry) for entry in history],
            "planned_steps": self.planned_steps,
        }

    def check_resume(self, state: dict[str, Any], epochs: int, max_steps: int | None) -> None:
        """Refuse a resume planned longer than the run's noise was chosen for (checkpoints hold
        `planned_steps`): it would end over its epsilon, which no setting could catch later.

        Raises:
            ConfigError: naming the epsilon the longer plan would spend.
        """
        from opacus.accountants import create_accountant

        planned = int(state.get("planned_steps", 0))
        now = min(self.steps_per_epoch * epochs, max_steps or math.inf)
        if not planned or now <= planned:
            return
        with self._opacus_calls():
            projected = create_accountant(self.config.accountant)
            projected.history = [(float(state["noise_multiplier"]), self.sample_rate, int(now))]
            epsilon = projected.get_epsilon(self.delta)
        raise ConfigError(
            f"train.epochs: this private run's noise was chosen for {planned} steps at "
            f"epsilon {self.config.epsilon:g}; {int(now)} steps would spend epsilon "
            f"{epsilon:.3g}. Resume with the planned epochs, or train a new run with more"
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue a run with its own noise and its spent budget (call after `attach`)."""
        assert self.accountant is not None and self.optimizer is not None
        self.noise_multiplier = float(state["noise_multiplier"])
        self.optimizer.noise_multiplier = self.noise_multiplier
        self.accountant.history = [tuple(entry) for entry in state["history"]]

    def detach(self) -> None:
        """Remove Opacus's hooks: the model is an ordinary module again."""
        if self.grad_sampler is not None:
            self.grad_sampler._close()  # type: ignore[operator]

    def summary(self) -> dict[str, Any]:
        """What eval.json and the report state about the guarantee."""
        return {
            "epsilon": round(self.epsilon(), 4),
            "target_epsilon": self.config.epsilon,
            "delta": self.delta,
            "accountant": self.config.accountant,
            "noise_multiplier": round(self.noise_multiplier or 0.0, 4),
            "max_grad_norm": self.config.max_grad_norm,
            "clipping": "ghost" if self.ghost else "per_sample",  # what `auto` resolved to
            "sample_rate": round(self.sample_rate, 6),
            "steps": sum(int(steps) for _, _, steps in self.state_dict()["history"]),
            "planned_steps": self.planned_steps,
        }
