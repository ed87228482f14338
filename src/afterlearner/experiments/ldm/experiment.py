"""The latent-diffusion experiment: an ordinary retrofit against the simulated user's verdict, then
the online curve (feedback session against random proposals) beside the row."""

from __future__ import annotations

from pathlib import Path

from afterlearner.experiments.base import Experiment
from afterlearner.experiments.ldm.task import CLASS_LABEL, UserVerdict, make_task
from afterlearner.result import RetrofitResult
from afterlearner.task import Task

#: Online curve sizes: (targets, answers, k) for the full and the reduced run.
CURVE_FULL = (8, 30, 4)
CURVE_REDUCED = (2, 6, 3)
#: The feedback session's optimizer in the online curve (pinned: the figures in docs/ldm.md used it);
#: its search steps are ``sampler.SESSION_LATENT_STEP`` (latent) and ``SESSION_KNOB_STEP`` (knobs),
#: the defaults of ``DiffusionSteering``; the offline retrofit keeps the local steps.
SESSION_OPTIMIZER = "TwoPointsDE"
#: The ℵ-spaces the online curve is measured on (name → whether the knobs are searched too).
VARIANTS = {"latent noise + knobs": True, "latent noise only": False}


def online_curve(task: Task, result: RetrofitResult, out: Path) -> list[Path]:
    """The online measurement: feedback session vs random proposals, for both ℵ-space variants.

    Writes ``out/ldm-curve.png`` (the curves), ``out/ldm-examples.png`` (targets and final images)
    and ``out/ldm-curve.json`` (every curve and its summary).
    """
    from afterlearner.experiments.ldm import curve
    from afterlearner.experiments.ldm.judge import load_judge
    from afterlearner.experiments.ldm.sampler import SESSION_LATENT_STEP
    from afterlearner.experiments.ldm.steering import PIPELINE_DIR

    assert isinstance(task.loss, UserVerdict)
    reduced = task.loss.reduced
    targets, answers, k = CURVE_REDUCED if reduced else CURVE_FULL
    weights = PIPELINE_DIR.parent
    judge, referee = load_judge(weights / "judge.pt"), load_judge(weights / "judge_heldout.pt")
    variants = {
        name: curve.measure(
            task.loss.steering.pipeline,
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


EXPERIMENTS = (
    Experiment(
        name="ldm",
        title="latent diffusion (diffusers, digits): initial latent noise + guidance/eta/steps "
        "steered by a user's choices",
        metric="1 − likeness to the user's hidden target",
        make_task=make_task,
        budget=120,
        optimizer="OnePlusOne",
        bound_applies=False,
        bound_note="not applicable: the ℵ-loss is one user's verdict on one image, not a mean over n "
        "samples; the held-out check is a panel of 10 judges trained with other seeds, each scoring the "
        "same images (the interval is over those judges)",
        after_reproduce=online_curve,
    ),
)
