"""Steer the latent diffusion model by clicks: the feedback task the web page serves.

:class:`DiffusionSteering` ties a pipeline (the committed one, or any saved in a local directory),
a prompt class and the ℵ-space of :mod:`~afterlearner.experiments.ldm.sampler` to the online mode:
``render(vector)`` gives the PNG a person judges, ``task()`` the
:class:`~afterlearner.online.task.FeedbackTask` that ``afterlearner feedback serve`` and the
simulated users drive. Generated images are cached by candidate, since the session, the page and
a simulated user may all ask for the same candidate's image.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from afterlearner.experiments.ldm.model import DigitLatentDiffusionPipeline, load_pipeline
from afterlearner.experiments.ldm.sampler import SESSION_KNOB_STEP, SESSION_LATENT_STEP, Knobs, Sampler
from afterlearner.online.render import Rendering, image
from afterlearner.online.task import FeedbackTask

#: The committed, trained pipeline (written by ``python -m afterlearner.experiments.ldm.train``).
PIPELINE_DIR = Path(__file__).with_name("weights") / "pipeline"
#: Width in pixels of the PNGs shown on the page.
PNG_SIZE = 160
CACHE_SIZE = 512


class DiffusionSteering:
    """A pipeline drawing ``class_label`` from searched latent noise and knobs (thread-safe, cached)."""

    def __init__(
        self,
        pipeline: DigitLatentDiffusionPipeline | str | Path = PIPELINE_DIR,
        class_label: int | None = 3,
        seed: int = 0,
        knobs: Knobs | None = None,
        latent: bool = True,
        search_knobs: bool = True,
        latent_step: float = SESSION_LATENT_STEP,
        knob_step: float | None = SESSION_KNOB_STEP,
    ) -> None:
        if not isinstance(pipeline, DigitLatentDiffusionPipeline):
            pipeline = load_pipeline(pipeline)
        self.pipeline = pipeline
        self.class_label = class_label
        self.sampler = Sampler(pipeline, class_label, seed=seed, knobs=knobs)
        self.aleph = self.sampler.aleph(
            latent=latent, knobs=search_knobs, latent_step=latent_step, knob_step=knob_step
        )
        self._lock = threading.Lock()
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()

    def image(self, vector: np.ndarray) -> np.ndarray:
        """The (H, W) image in [0, 1] that candidate ``vector`` generates (same vector, same image)."""
        vector = np.asarray(vector, dtype=float).ravel()
        key = vector.tobytes()
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            with self.aleph.applied(vector):
                picture = self.sampler.render()
            self._cache[key] = picture
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
            return picture

    def render(self, vector: np.ndarray) -> Rendering:
        return image(self.image(vector), size=PNG_SIZE)

    def describe(self) -> str:
        what = "any digit" if self.class_label is None else f"the digit {self.class_label}"
        labels = {
            "noise": "the initial latent noise",
            "guidance_scale": "the guidance scale",
            "eta": "eta",
            "steps": "the number of DDIM steps",
        }
        searched = [
            f"{labels.get(e.name, e.name)}" + (f" ({e.size} numbers)" if e.size > 1 else "")
            for e in self.aleph
        ]
        return (
            "A latent diffusion model trained in this repository (diffusers AutoencoderKL + "
            f"UNet2DModel, DDIM sampling) draws {what}. Searched: {', '.join(searched)}."
        )

    def task(self, k: int = 4, budget: int = 30, optimizer: str | None = None) -> FeedbackTask:
        """The feedback task: ``k`` images per question, ``budget`` answers."""
        what = "digit" if self.class_label is None else str(self.class_label)
        options = {} if optimizer is None else {"optimizer": optimizer}
        return FeedbackTask(
            self.aleph,
            self.render,
            k=k,
            budget=budget,
            name=f"latent diffusion: {what}",
            prompt=f"Which {what} is closest to the one you have in mind?",
            description=self.describe(),
            **options,
        )
