"""The retrofit of one drawing: the simulated user's verdict as the ℵ-loss of an ordinary retrofit.

The held-out loss asks the same question of judges the search never consulted: the panel of
:mod:`.referees` (ten judges trained with other seeds), each scoring the current image's likeness
to the user's hidden target. Each referee is a held-out item: the held-out loss is one verdict per
referee (1 − likeness), and the held-out gain gets a paired interval over referees. It says how
surely an independently trained judge sees the image come closer to the target, for this drawing
and this target; the spread over targets is measured by the online curve beside the row.

The diffusers pipeline is imported when the task is built, not when this module is imported.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

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


class PanelVerdicts:
    """The held-out loss: 1 − the likeness of the current image to the target, one per referee.

    A 1-D array whose mean is the loss: ``afterlearner.heldout`` pairs the referees' verdicts on the
    trained and the retrofitted image for the gain's interval.
    """

    def __init__(self, steering, referees: Sequence) -> None:  # noqa: ANN001 - lazy imports
        if len(referees) < 2:
            raise ValueError("a panel needs at least 2 referees")
        self.steering = steering
        self.referees = list(referees)

    def __call__(self, _model: object) -> np.ndarray:
        image = self.steering.sampler.render()
        return np.array([1.0 - referee.score(image) for referee in self.referees])


def make_task(reduced: bool = False) -> Task:
    """The retrofit of one drawing towards the first held-out '3' (``reduced``: fewer DDIM steps)."""
    from afterlearner.experiments.ldm.curve import targets_of, user_for
    from afterlearner.experiments.ldm.judge import load_judge
    from afterlearner.experiments.ldm.referees import load_referees
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
    referees = [user_for(judge, target, CLASS_LABEL) for judge in load_referees(weights)]
    return Task(
        aleph=steering.aleph,
        loss=UserVerdict(steering, user, reduced),
        test_loss=PanelVerdicts(steering, referees),
        name="ldm" + ("-reduced" if reduced else ""),
        description=steering.describe(),
    )
