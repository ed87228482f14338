"""Measure online steering: target score vs number of answers, feedback session against random proposals.

For each hidden target (a held-out handwriting of the prompt class), a simulated user answers
``answers`` questions of ``k`` images each, only by comparisons ("this one is best", or "none is
better than the current best"):

* **session**: the questions come from a :class:`~afterlearner.online.FeedbackSession` (a
  comparison-based optimizer over the latent noise and the knobs, told only what the clicks imply);
* **random**: each question shows ``k`` fresh random proposals (new latent noise, knobs drawn in
  their ranges: re-rolling the seed and the settings), the user keeps the best seen.

Both start from the same image. The curve is the hidden target score (the judge's cosine
similarity to the target, higher is better) of the current best after each answer, averaged over
targets; a second judge trained with another seed (never used by the user) scores the final
images, to check that the gain is a real likeness and not a quirk of the first judge's features.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from afterlearner.experiments.ldm import data
from afterlearner.experiments.ldm.judge import Judge
from afterlearner.experiments.ldm.model import DigitLatentDiffusionPipeline
from afterlearner.experiments.ldm.sampler import SESSION_KNOB_STEP, SESSION_LATENT_STEP, Knobs
from afterlearner.experiments.ldm.steering import DiffusionSteering
from afterlearner.experiments.ldm.user import TargetUser
from afterlearner.online.session import DEFAULT_OPTIMIZER
from afterlearner.online.simulated import SimulatedUser, drive
from afterlearner.report import pyplot, save_figure


@dataclass
class Curves:
    """Scores (higher is better) of the current best, (targets, answers + 1), and final held-out scores."""

    class_label: int
    k: int
    answers: int
    optimizer: str
    targets: list[int]
    session: list[list[float]]
    random: list[list[float]]
    session_heldout: list[float]
    random_heldout: list[float]
    start_heldout: list[float]
    #: Per target: the target, the start, the session's and random's final images ((H, W) lists).
    images: list[dict[str, list[list[float]]]]
    #: The session's search step of the latent offsets.
    latent_step: float = SESSION_LATENT_STEP

    def mean(self, which: str) -> np.ndarray:
        return np.asarray(getattr(self, which), dtype=float).mean(axis=0)

    def summary(self) -> dict[str, float]:
        """Mean scores at the start, after 10 answers and at the end, for both methods."""
        session, random = self.mean("session"), self.mean("random")
        at = min(10, self.answers)
        wins = np.asarray(self.session)[:, -1] > np.asarray(self.random)[:, -1]
        heldout_wins = np.asarray(self.session_heldout) > np.asarray(self.random_heldout)
        return {
            "start": float(session[0]),
            f"session_{at}": float(session[at]),
            f"random_{at}": float(random[at]),
            "session_final": float(session[-1]),
            "random_final": float(random[-1]),
            "session_beats_random": float(wins.mean()),
            "heldout_start": float(np.mean(self.start_heldout)),
            "heldout_session": float(np.mean(self.session_heldout)),
            "heldout_random": float(np.mean(self.random_heldout)),
            "heldout_session_beats_random": float(heldout_wins.mean()),
        }


def targets_of(class_label: int, count: int) -> list[int]:
    """Indices (into the held-out digits) of the first ``count`` digits of ``class_label``."""
    labels = data.load().held_labels.numpy()
    indices = [int(i) for i in np.flatnonzero(labels == class_label)[:count]]
    if len(indices) < count:
        raise ValueError(f"only {len(indices)} held-out digits of class {class_label}, asked for {count}")
    return indices


def target_image(index: int) -> np.ndarray:
    """Held-out digit ``index`` as an (H, W) image in [0, 1]."""
    return ((data.load().held_images[index, 0] + 1.0) / 2.0).numpy()


def typical_of(class_label: int) -> np.ndarray:
    """The training digits of ``class_label`` as (B, H, W) images in [0, 1] (the users' origin of style)."""
    digits = data.load()
    return ((digits.train_images[digits.train_labels == class_label, 0] + 1.0) / 2.0).numpy()


def user_for(judge: Judge, index: int, class_label: int) -> TargetUser:
    """A simulated user whose hidden target is held-out digit ``index`` (of class ``class_label``)."""
    return TargetUser(judge, target_image(index), typical_of(class_label))


def session_curve(
    steering: DiffusionSteering,
    user: TargetUser,
    k: int,
    answers: int,
    seed: int,
    optimizer: str = DEFAULT_OPTIMIZER,
) -> tuple[list[float], np.ndarray]:
    """Drive a feedback session with a comparison-only simulated user; (scores after each answer, best)."""
    session = steering.task(k=k, budget=answers, optimizer=optimizer).session(seed=seed)
    simulated = SimulatedUser(score=lambda vector: -user.score(steering.image(vector)), style="best")
    curve = drive(session, simulated)
    return [-value for value in curve], session.best.vector


def random_curve(
    steering: DiffusionSteering, user: TargetUser, k: int, answers: int, seed: int
) -> tuple[list[float], np.ndarray]:
    """``answers`` questions of ``k`` random proposals; the user keeps the best (same answers as above)."""
    rng = np.random.default_rng(seed)
    best = steering.aleph.identity()
    best_score = user.score(steering.image(best))
    curve = [best_score]
    for _ in range(answers):
        candidates = [steering.sampler.random_candidate(steering.aleph, rng) for _ in range(k)]
        images = [steering.image(candidate) for candidate in candidates]
        choice = user.best_of(images)
        if user.prefers(images[choice], steering.image(best)):
            best, best_score = candidates[choice], user.score(images[choice])
        curve.append(best_score)
    return curve, best


def measure(
    pipeline: DigitLatentDiffusionPipeline,
    judge: Judge,
    heldout_judge: Judge,
    class_label: int = 3,
    targets: int = 8,
    k: int = 4,
    answers: int = 30,
    optimizer: str = DEFAULT_OPTIMIZER,
    steps: int = 10,
    search_knobs: bool = True,
    latent_step: float = SESSION_LATENT_STEP,
    knob_step: float | None = SESSION_KNOB_STEP,
    first: int = 0,
) -> Curves:
    """Session and random curves for ``targets`` hidden targets (target i starts from latent seed i).

    ``search_knobs=False`` searches the latent noise only (the knobs stay at their defaults);
    ``latent_step`` and ``knob_step`` are the session's search steps (see ``Sampler.aleph``; the
    random proposals are fresh noise and uniform knobs whatever the steps). ``first`` skips the
    first held-out digits of the class (target ``first + i`` starts from latent seed ``first + i``),
    to tune settings on other targets than those reported.
    """
    indices = targets_of(class_label, first + targets)[first:]
    session, random, session_heldout, random_heldout, start_heldout, images = [], [], [], [], [], []
    for seed, index in enumerate(indices, start=first):
        user, referee = user_for(judge, index, class_label), user_for(heldout_judge, index, class_label)
        steering = DiffusionSteering(
            pipeline,
            class_label=class_label,
            seed=seed,
            knobs=Knobs(steps=steps),
            search_knobs=search_knobs,
            latent_step=latent_step,
            knob_step=knob_step,
        )
        curve, session_best = session_curve(steering, user, k, answers, seed, optimizer)
        session.append(curve)
        curve, random_best = random_curve(steering, user, k, answers, seed)
        random.append(curve)
        shown = {
            "target": target_image(index),
            "start": steering.image(steering.aleph.identity()),
            "session": steering.image(session_best),
            "random": steering.image(random_best),
        }
        start_heldout.append(referee.score(shown["start"]))
        session_heldout.append(referee.score(shown["session"]))
        random_heldout.append(referee.score(shown["random"]))
        images.append({name: np.round(picture, 3).tolist() for name, picture in shown.items()})
    return Curves(
        class_label,
        k,
        answers,
        optimizer,
        indices,
        session,
        random,
        session_heldout,
        random_heldout,
        start_heldout,
        images,
        latent_step,
    )


def plot(variants: dict[str, Curves], path: str | Path) -> Path:
    """One panel per ℵ-space variant: mean target score (± 1 std across targets) vs answers, both methods."""
    figure, panels = pyplot().subplots(
        1, len(variants), figsize=(5.5 * len(variants), 4), squeeze=False, sharey=True
    )
    for (variant, curves), axes in zip(variants.items(), panels[0], strict=True):
        xs = np.arange(curves.answers + 1)
        session = f"feedback session ({curves.optimizer}, latent step {curves.latent_step:g})"
        for which, label, colour in (("session", session, "C0"), ("random", "random re-rolls", "C1")):
            values = np.asarray(getattr(curves, which), dtype=float)
            mean, std = values.mean(axis=0), values.std(axis=0)
            axes.plot(xs, mean, color=colour, label=label)
            axes.fill_between(xs, mean - std, mean + std, color=colour, alpha=0.15)
        axes.set_xlabel(f"answers (each: best of {curves.k} images, or none)")
        title = f"{variant} ({len(curves.targets)} hidden targets '{curves.class_label}')"
        axes.set_title(title, fontsize=10)
        axes.legend(loc="lower right", fontsize=8)
    panels[0][0].set_ylabel("hidden target score (centred cosine)")
    return save_figure(figure, path)


def plot_examples(curves: Curves, path: str | Path, count: int = 4) -> Path:
    """One row per target: the hidden target, the start, the session's and random's final images."""
    rows = curves.images[:count]
    columns = (
        ("target", "hidden target"),
        ("start", "start"),
        ("session", f"session, {curves.answers} answers"),
        ("random", f"random, {curves.answers} answers"),
    )
    figure, axes = pyplot().subplots(
        len(rows), len(columns), figsize=(1.9 * len(columns), 1.9 * len(rows)), squeeze=False
    )
    for row, (shown, line) in enumerate(zip(rows, axes, strict=True)):
        for (key, title), ax in zip(columns, line, strict=True):
            ax.imshow(np.asarray(shown[key]), cmap="gray_r", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if key != "target":
                score = {
                    "start": curves.session[row][0],
                    "session": curves.session[row][-1],
                    "random": curves.random[row][-1],
                }[key]
                ax.set_xlabel(f"score {score:.2f}", fontsize=8)
            if row == 0:
                ax.set_title(title, fontsize=8)
    return save_figure(figure, path)


def save(variants: dict[str, Curves], path: str | Path) -> Path:
    """The curves and their summaries as JSON, one entry per variant (the figures quoted in docs/ldm.md)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {name: {"summary": curves.summary(), **asdict(curves)} for name, curves in variants.items()}
    path.write_text(json.dumps(document, indent=1) + "\n")
    return path
