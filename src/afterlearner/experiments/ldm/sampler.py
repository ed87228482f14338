"""The ℵ-space of online latent diffusion: the initial latent noise and the sampler's knobs.

A :class:`Sampler` wraps a pipeline with a *prompt* (the class to draw) and holds what the retrofit
searches: the initial latent (a buffer of a small module, so :class:`~afterlearner.Aleph` searches
offsets from the drawn noise) and the knobs (guidance scale, ``eta``, number of DDIM steps) as
plain attributes (searched with ``Aleph.hyper``). Rendering a candidate means writing it into the
sampler and denoising: the same candidate always gives the same image (the noise that ``eta``
injects comes from a fixed seed). The latent is projected on the sphere where N(0, I) noise lives
before denoising (see :meth:`Sampler.initial_latent`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from afterlearner.experiments.ldm.model import DigitLatentDiffusionPipeline
from afterlearner.space import Aleph

#: Ranges searched for the knobs (the defaults are the starting point).
GUIDANCE_RANGE = (0.0, 6.0)
ETA_RANGE = (0.0, 1.0)
STEPS_RANGE = (3, 25)
#: Search step of the latent offsets in the offline retrofit (the latent noise itself has unit variance).
LATENT_STEP = 0.5
#: Search step of the latent offsets in a feedback session: of the order of the noise itself, so the
#: session's first proposals are nearly fresh draws (global exploration, like re-rolling the seed) and
#: differential evolution's recombinations refine from there (measured in docs/ldm.md: with step 0.5
#: the session searched around one start and did not beat random re-rolls).
SESSION_LATENT_STEP = 2.0
#: Search step of each knob in a feedback session, as a fraction of its range (the offline retrofit
#: keeps Nevergrad's default, a sixth): wide, like the latent, so the first proposals vary the settings
#: as much as re-rolling them would.
SESSION_KNOB_STEP = 0.5


@dataclass
class Knobs:
    """The sampler's hyperparameters: what a person would otherwise tune by hand."""

    guidance_scale: float = 2.0
    eta: float = 0.0
    steps: int = 10


class Latent(torch.nn.Module):
    """Holds one initial latent (1, C, H, W) as the buffer ``noise``, drawn from N(0, I) with ``seed``."""

    def __init__(self, shape: tuple[int, int, int], seed: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("noise", torch.randn((1, *shape), generator=generator))


class Sampler:
    """Draws the ``class_label`` digit from ``latent`` with ``knobs``; ``render()`` returns the image."""

    def __init__(
        self,
        pipeline: DigitLatentDiffusionPipeline,
        class_label: int | None,
        seed: int = 0,
        knobs: Knobs | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.class_label = class_label
        self.seed = seed
        self.latent = Latent(pipeline.latent_shape, seed)
        self.knobs = knobs or Knobs()

    def initial_latent(self) -> torch.Tensor:
        """The searched latent projected on the sphere of radius √d, where N(0, I) noise concentrates.

        The offsets move the *direction* of the initial noise; its norm stays that of typical
        noise, so no candidate, however far the optimizer steps, feeds the UNet an implausible
        latent (unprojected, a (1+1)-ES chasing a user's taste was seen to grow the offsets to 1e19).
        """
        noise = self.latent.noise.double()
        noise = noise / noise.abs().max().clamp_min(1e-300)  # no overflow in the norm of huge offsets
        return (noise * (noise[0].numel() ** 0.5 / noise.norm().clamp_min(1e-300))).float()

    def render(self) -> np.ndarray:
        """The image (H, W) in [0, 1] for the current latent and knobs."""
        image = self.pipeline(
            self.initial_latent(),
            class_label=self.class_label,
            guidance_scale=self.knobs.guidance_scale,
            eta=self.knobs.eta,
            num_inference_steps=int(self.knobs.steps),
            seed=self.seed,
        )
        return image[0, :, :, 0]

    def aleph(
        self,
        latent: bool = True,
        knobs: bool = True,
        latent_step: float = LATENT_STEP,
        knob_step: float | None = None,
    ) -> Aleph:
        """The ℵ-space: latent offsets (64 numbers for the trained model) and/or the knobs.

        ``latent_step`` is the search step of the latent offsets (the noise has unit variance: a
        step of 0.5 moves the direction by about 27°, a step of 2 gives nearly fresh noise);
        ``knob_step`` the search step of each knob as a fraction of its range (None: Nevergrad's
        default for a bounded scalar, a sixth of the range).
        The guidance scale is searched only with a class prompt (without one it changes nothing).
        """
        space = Aleph(self.latent)
        if latent:
            space.add("noise", mode="offset", step=latent_step)

        def step(bounds: tuple[float, float]) -> float | None:
            return None if knob_step is None else knob_step * (bounds[1] - bounds[0])

        if knobs and self.class_label is not None:  # guidance needs a class to be guided towards
            space.hyper(
                self.knobs,
                "guidance_scale",
                *GUIDANCE_RANGE,
                name="guidance_scale",
                step=step(GUIDANCE_RANGE),
            )
        if knobs:
            space.hyper(self.knobs, "eta", *ETA_RANGE, name="eta", step=step(ETA_RANGE))
            space.hyper(self.knobs, "steps", *STEPS_RANGE, name="steps", integer=True, step=step(STEPS_RANGE))
        space.check()
        return space

    def random_candidate(self, aleph: Aleph, rng: np.random.Generator) -> np.ndarray:
        """A random proposal in ``aleph``: fresh N(0, I) latent noise and uniformly drawn knobs.

        This is the baseline: what a person gets by re-rolling the seed and the settings.
        """
        parts = []
        for entry in aleph:
            if entry.name == "noise":
                fresh = rng.standard_normal(entry.size)
                parts.append(fresh - self.latent.noise.numpy().ravel())  # offset that lands on fresh noise
            elif entry.name == "guidance_scale":
                parts.append([rng.uniform(*GUIDANCE_RANGE)])
            elif entry.name == "eta":
                parts.append([rng.uniform(*ETA_RANGE)])
            elif entry.name == "steps":
                parts.append([float(rng.integers(STEPS_RANGE[0], STEPS_RANGE[1] + 1))])
            else:
                raise ValueError(f"unexpected ℵ-entry {entry.name!r}")
        return np.concatenate([np.asarray(part, dtype=float) for part in parts])
