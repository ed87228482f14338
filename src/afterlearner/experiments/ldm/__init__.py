"""Latent diffusion retrofitted online from (simulated) user feedback.

A tiny latent diffusion model (diffusers ``AutoencoderKL`` + class-conditional ``UNet2DModel`` +
``DDIMScheduler``, trained in this repository on scikit-learn's digits) draws a "3". The user wants
a *particular* 3: a held-out handwriting they keep to themselves. The ℵ-parameters are the initial
latent noise (64 numbers) and the sampler's knobs (guidance scale, eta, DDIM steps); the ℵ-loss is
the user's verdict. See docs/ldm.md.

* ``afterlearner feedback serve src/afterlearner/experiments/ldm/feedback.py:factory --store FILE``:
  a person steers it on the web page;
* ``afterlearner reproduce ldm``: the simulated user's verdict as the ℵ-loss of an ordinary
  retrofit (:mod:`.task`; a comparison-based optimizer only uses its comparisons), then the online
  curve (target score vs answers, feedback session against random proposals) written to
  ``OUT/ldm-curve.png`` (:mod:`.experiment`).
"""
