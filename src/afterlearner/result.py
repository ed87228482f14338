"""What a retrofit found: the best candidate, the losses before and after, and how to use them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from afterlearner import optimizers as optimizer_registry
from afterlearner.bound import bound_of
from afterlearner.errors import ConfigError
from afterlearner.guards import GuardCheck
from afterlearner.heldout import Gain, HeldOut
from afterlearner.space import Aleph
from afterlearner.store import Evaluation

#: The status of a retrofit whose every run spent its budget.
FINISHED = "finished"
#: Ctrl-C: the result so far, with the model at the best so far.
INTERRUPTED = "interrupted"
#: Prefix of the status of a run stopped early on purpose (time limit, target, a callback).
STOPPED = "stopped"


@dataclass
class RunOutcome:
    """One of the ``runs`` independent runs: its evaluations in order and the index of its best."""

    run_index: int
    seed: int
    history: list[Evaluation]
    best_index: int | None

    @property
    def best(self) -> Evaluation | None:
        return None if self.best_index is None else self.history[self.best_index]


@dataclass
class RetrofitResult:
    """What a retrofit found. ``best`` is in searched units (offsets, factors, hyperparameter values).

    ``best`` and ``best_loss`` are the returned candidate's: the lowest ℵ-loss evaluated (ties to the
    latest), except that an ``"auto"`` run returns its final centroid unless the best beats it by
    more than 10% (``afterlearner.optimizers.AUTO_CENTROID_MARGIN``); ``history`` has every loss.
    ``status`` is ``"finished"``, ``"interrupted"`` (Ctrl-C) or ``"stopped: <reason>"`` (time limit,
    target reached, a callback); ``already_complete`` says the store held the whole run before this
    call, so nothing was evaluated again and the figures are the original run's.
    """

    aleph: Aleph = field(repr=False)
    optimizer: str
    budget: int
    workers: int
    runs: int
    seed: int
    best: np.ndarray
    initial_loss: float | None
    best_loss: float | None
    evaluations: int
    failures: int
    interrupted: bool
    wall_time: float
    test_initial: float | None = None
    test_best: float | None = None
    held_out: HeldOut | None = None
    n: int | None = None
    history: list[Evaluation] = field(default_factory=list, repr=False)
    run_outcomes: list[RunOutcome] = field(default_factory=list, repr=False)
    status: str = FINISHED
    already_complete: bool = False
    name: str | None = None
    zero_one: bool = False  # the ℵ-loss is a mean of 0/1 per-sample losses (the bound's kl form)
    infeasible: int = 0  # evaluations that broke a guard (never the best)
    guard_checks: list[GuardCheck] = field(default_factory=list)  # each guard at the end

    @property
    def comparison_based(self) -> bool:
        return optimizer_registry.get(self.optimizer).comparison_based

    @property
    def test_gain(self) -> Gain | None:
        """The held-out gain (trained − retrofitted loss): ``.value``, ``.low``, ``.high``, ``.p_value``,
        ``.n``, ``.verdict``; None without a held-out loss (see :mod:`afterlearner.heldout`)."""
        return self.held_out.gain if self.held_out is not None else None

    @property
    def stopped(self) -> str | None:
        """Why the run stopped early (``"time limit"``, ``"target reached"``, ...), or None."""
        prefix = STOPPED + ": "
        return self.status[len(prefix) :] if self.status.startswith(prefix) else None

    def bound(self, n: int | None = None, delta: float = 0.05) -> float | None:
        """The overfitting bound ε (see :mod:`afterlearner.bound`); None if it does not apply.

        ``n`` is the number of samples in the ℵ-dataset (default: the task's ``n``). None for
        optimizers that use loss values rather than comparisons. When the ℵ-loss is a mean of 0/1
        per-sample losses (``error_rate``, ``threshold_error``), the tighter kl form at the best loss.
        """
        n = n if n is not None else self.n
        if n is None:
            raise ConfigError("the bound needs n, the number of samples in the ℵ-dataset")
        loss = self.best_loss if self.zero_one else None
        return bound_of(
            self.optimizer, self.budget, n, delta, self.runs, loss=loss, guards=len(self.guard_checks)
        )

    def restore(self) -> None:
        """Put the trained values back into the model, bit for bit."""
        self.aleph.restore()

    def apply(self) -> None:
        """Write the best candidate into the model (again)."""
        self.aleph.write(self.best)

    def losses(self) -> list[float | None]:
        """ℵ-loss of every evaluation in order (None for failures), all runs concatenated."""
        return [evaluation.loss for evaluation in self.history]

    def infeasible_indices(self) -> list[int]:
        """Positions in :meth:`losses` of the evaluations that broke a guard (never the best)."""
        return [i for i, evaluation in enumerate(self.history) if evaluation.status == "infeasible"]

    def values(self) -> dict[str, np.ndarray | float | int]:
        """The best candidate's retrofitted value of every ℵ-entry, by name (see :meth:`Aleph.values`)."""
        return self.aleph.values(self.best)

    def settings(self) -> dict[str, Any]:
        """The settings of this retrofit, as a store records them."""
        return {
            "space": self.aleph.signature(),
            "optimizer": self.optimizer,
            "budget": self.budget,
            "workers": self.workers,
            "runs": self.runs,
            "seed": self.seed,
            "task": self.name,
            "n": self.n,
            **({"guards": {c.name: c.tolerance for c in self.guard_checks}} if self.guard_checks else {}),
        }

    def dataframe(self) -> Any:
        """One row per evaluation (run, index, status, loss, best so far, ..., one column per ℵ-scalar).

        Needs pandas; the same table as ``afterlearner show STORE --csv``.
        """
        from afterlearner import history

        return history.dataframe(self.settings(), self.history)

    def save(self, path: str | Path, delta: float = 0.05) -> Path:
        """Write the retrofit as a safetensors patch that loads without afterlearner.

        ``model.load_state_dict(safetensors.torch.load_file(path), strict=False)`` on a freshly
        built trained model gives the retrofitted model; the file's metadata holds the
        hyperparameter values, the settings, the losses and the bound (see :mod:`afterlearner.patch`).
        """
        from afterlearner.patch import result_metadata, save_patch

        return save_patch(self.aleph, self.best, path, **result_metadata(self, delta))
