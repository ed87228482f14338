"""Feedback task file: steer the latent diffusion model on the web page.

    afterlearner feedback serve src/afterlearner/experiments/ldm/feedback.py:factory --store clicks.sqlite

Each question shows 4 images of a "3" drawn by the committed latent diffusion model; a click on
the one closest to the 3 you have in mind (or "none is better") moves the search over the initial
latent noise and the guidance scale, eta and number of DDIM steps. 30 answers by default.
"""

from __future__ import annotations

from afterlearner.experiments.ldm.steering import DiffusionSteering
from afterlearner.online.task import FeedbackTask


def factory() -> FeedbackTask:
    """The committed model drawing a 3, 4 images per question, 30 answers (``feedback serve`` calls this)."""
    return DiffusionSteering(class_label=3).task(k=4, budget=30)


def any_digit() -> FeedbackTask:
    """The same without a class prompt (unconditional sampling): steer towards whatever digit you like."""
    return DiffusionSteering(class_label=None).task(k=4, budget=30)
