"""The retrofit of one drawing: the simulated user's verdict as the ℵ-loss of an ordinary retrofit.

The held-out loss is the same verdict from a second judge: one number about one image, with no items
to resample, so the held-out gain is reported without an interval (the online curve over several
targets, beside the row, is where the spread shows).

The diffusers pipeline is imported when the task is built, not when this module is imported.
"""

from __future__ import annotations

from afterlearner.task import Task

#: The prompt: the class the model is asked to draw.
CLASS_LABEL = 3


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
        description=steering.describe(),
    )
