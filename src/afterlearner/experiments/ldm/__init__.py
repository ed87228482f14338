"""Latent diffusion retrofitted online from (simulated) user feedback.

A tiny latent diffusion model (diffusers ``AutoencoderKL`` + class-conditional ``UNet2DModel`` +
``DDIMScheduler``, trained in this repository on scikit-learn's digits) draws a "3". The user wants
a *particular* 3: a held-out handwriting they keep to themselves. The ℵ-parameters are the initial
latent noise (64 numbers) and the sampler's knobs (guidance scale, eta, DDIM steps); the ℵ-loss is
the user's verdict. See docs/ldm.md.

* ``afterlearner feedback serve src/afterlearner/experiments/ldm/task.py:factory --store FILE``:
  a person steers it on the web page;
* ``afterlearner reproduce ldm``: the simulated user's verdict as the ℵ-loss of an ordinary
  retrofit (a comparison-based optimizer only uses its comparisons), then the online curve (target
  score vs answers, feedback session against random proposals) written to ``OUT/ldm-curve.png``.
"""

from __future__ import annotations

from pathlib import Path

from afterlearner.result import RetrofitResult
from afterlearner.task import Task

TITLE = (
    "latent diffusion (diffusers, digits): initial latent noise + guidance/eta/steps "
    "steered by a user's choices"
)
METRIC = "1 − likeness to the user's hidden target"
DEFAULT_BUDGET = 120
DEFAULT_OPTIMIZER = "OnePlusOne"
BOUND_NOTE = (
    "not applicable: the ℵ-loss is one user's verdict on one image, not a mean over n samples; "
    "the held-out check is a second judge (another seed) scoring the same images"
)
#: The prompt: the class the model is asked to draw.
CLASS_LABEL = 3
#: Online curve sizes: (targets, answers, k) for the full and the reduced run.
CURVE_FULL = (8, 30, 4)
CURVE_REDUCED = (2, 6, 3)
#: The feedback session's optimizer in the online curve (pinned: the figures in docs/ldm.md used it);
#: its search steps are ``sampler.SESSION_LATENT_STEP`` (latent) and ``SESSION_KNOB_STEP`` (knobs),
#: the defaults of ``DiffusionSteering``; the offline retrofit keeps the local steps.
SESSION_OPTIMIZER = "TwoPointsDE"
#: The ℵ-spaces the online curve is measured on (name → whether the knobs are searched too).
VARIANTS = {"latent noise + knobs": True, "latent noise only": False}


class UserVerdict:
    """The ℵ-loss: 1 − the hidden likeness of the current image to the target, as ``judge`` sees it."""

    def __init__(self, steering, user, reduced: bool) -> None:  # noqa: ANN001 - lazy imports
        self.steering = steering
        self.user = user
        self.reduced = reduced

    def __call__(self, _model: object) -> float:
        return 1.0 - self.user.score(self.steering.sampler.render())


def make_task(reduced: bool = False) -> Task:
    """The retrofit of one drawing towards the first held-out '3' (``reduced``: fewer DDIM steps)."""
    from afterlearner.experiments.ldm.curve import targets_of, user_for
    from afterlearner.experiments.ldm.judge import load_judge
    from afterlearner.experiments.ldm.sampler import LATENT_STEP, Knobs
    from afterlearner.experiments.ldm.steering import PIPELINE_DIR, DiffusionSteering

    steering = DiffusionSteering(
        PIPELINE_DIR,
        class_label=CLASS_LABEL,
        seed=0,
        knobs=Knobs(steps=5 if reduced else 10),
        latent_step=LATENT_STEP,
        knob_step=None,
    )
    target = targets_of(CLASS_LABEL, 1)[0]
    weights = PIPELINE_DIR.parent
    user = user_for(load_judge(weights / "judge.pt"), target, CLASS_LABEL)
    referee = user_for(load_judge(weights / "judge_heldout.pt"), target, CLASS_LABEL)
    return Task(
        aleph=steering.aleph,
        loss=UserVerdict(steering, user, reduced),
        test_loss=UserVerdict(steering, referee, reduced),
        name="ldm" + ("-reduced" if reduced else ""),
        budget=DEFAULT_BUDGET,
        optimizer=DEFAULT_OPTIMIZER,
        description=steering.describe(),
    )


def after_reproduce(task: Task, result: RetrofitResult, out: str | Path) -> list[Path]:
    """The online measurement: feedback session vs random proposals, for both ℵ-space variants.

    Writes ``out/ldm-curve.png`` (the curves), ``out/ldm-examples.png`` (targets and final images)
    and ``out/ldm-curve.json`` (every curve and its summary).
    """
    from afterlearner.experiments.ldm import curve
    from afterlearner.experiments.ldm.judge import load_judge
    from afterlearner.experiments.ldm.sampler import SESSION_LATENT_STEP
    from afterlearner.experiments.ldm.steering import PIPELINE_DIR

    reduced = bool(getattr(task.loss, "reduced", False))
    targets, answers, k = CURVE_REDUCED if reduced else CURVE_FULL
    weights = PIPELINE_DIR.parent
    steering = task.loss.steering  # type: ignore[attr-defined]
    judge, referee = load_judge(weights / "judge.pt"), load_judge(weights / "judge_heldout.pt")
    variants = {
        name: curve.measure(
            steering.pipeline,
            judge,
            referee,
            class_label=CLASS_LABEL,
            targets=targets,
            k=k,
            answers=answers,
            steps=5 if reduced else 10,
            search_knobs=knobs,
            optimizer=SESSION_OPTIMIZER,
            latent_step=SESSION_LATENT_STEP,
        )
        for name, knobs in VARIANTS.items()
    }
    out = Path(out)
    return [
        curve.plot(variants, out / "ldm-curve.png"),
        curve.plot_examples(variants[next(iter(VARIANTS))], out / "ldm-examples.png"),
        curve.save(variants, out / "ldm-curve.json"),
    ]
