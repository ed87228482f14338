"""A tiny latent diffusion model built from diffusers components, and the pipeline that samples it.

* an ``AutoencoderKL`` maps a 16×16 grey image to a 4×4×4 latent (64 numbers) and back;
* a class-conditional ``UNet2DModel`` predicts the noise in that latent space (class 10 is the
  "no class" token used for classifier-free guidance);
* a ``DDIMScheduler`` samples in a few steps, with ``eta`` between deterministic DDIM (0) and
  DDPM-like noise (1).

:class:`DigitLatentDiffusionPipeline` is an ordinary diffusers ``DiffusionPipeline``: it is saved
with ``save_pretrained(directory)`` and loaded with :func:`load_pipeline` from a local directory
(never from a hub). It takes the *initial latent noise* explicitly: that noise, the guidance scale,
``eta`` and the number of steps are what the online retrofit searches.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import AutoencoderKL, DDIMScheduler, DiffusionPipeline, UNet2DModel

from afterlearner.errors import TaskError

#: Number of digit classes; class index ``NULL_CLASS`` is the unconditional token.
CLASSES = 10
NULL_CLASS = CLASSES

VAE_CONFIG: dict[str, Any] = {
    "in_channels": 1,
    "out_channels": 1,
    "down_block_types": ["DownEncoderBlock2D"] * 3,
    "up_block_types": ["UpDecoderBlock2D"] * 3,
    "block_out_channels": [16, 32, 32],
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": 8,
    "sample_size": 16,
    "mid_block_add_attention": False,
}

UNET_CONFIG: dict[str, Any] = {
    "sample_size": 4,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 1,
    "block_out_channels": [32, 48],
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D"],
    "up_block_types": ["AttnUpBlock2D", "UpBlock2D"],
    "norm_num_groups": 8,
    "num_class_embeds": CLASSES + 1,
}

SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_schedule": "squaredcos_cap_v2",
    "clip_sample": False,
    "prediction_type": "epsilon",
}


class DigitLatentDiffusionPipeline(DiffusionPipeline):
    """Class-conditional latent diffusion with classifier-free guidance, from a given initial noise."""

    model_cpu_offload_seq = "unet->vae"

    def __init__(self, vae: AutoencoderKL, unet: UNet2DModel, scheduler: DDIMScheduler) -> None:
        super().__init__()
        self.register_modules(vae=vae, unet=unet, scheduler=scheduler)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one initial latent."""
        size = self.unet.config.sample_size
        height, width = (size, size) if isinstance(size, int) else tuple(size)
        return (self.unet.config.in_channels, height, width)

    @property
    def conditional(self) -> bool:
        """Whether the UNet takes class labels (and so whether guidance means anything)."""
        return self.unet.config.num_class_embeds is not None

    @torch.no_grad()
    def __call__(
        self,
        latents: torch.Tensor,
        class_label: int | None = None,
        guidance_scale: float = 1.0,
        eta: float = 0.0,
        num_inference_steps: int = 10,
        seed: int = 0,
    ) -> np.ndarray:
        """Denoise ``latents`` (B, C, H, W) into images (B, H', W', channels) with values in [0, 1].

        With a class label, the noise estimate is ``uncond + guidance_scale * (cond - uncond)``
        (``guidance_scale = 1`` is plain conditional sampling, 0 unconditional). ``seed`` fixes the
        extra noise that ``eta > 0`` injects, so the same arguments always give the same images.
        """
        latents = self._checked_latents(latents)
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        if not 0.0 <= eta <= 1.0:
            raise ValueError(f"eta must lie in [0, 1], got {eta}")
        labels = self._labels(class_label, len(latents))
        generator = torch.Generator(device="cpu").manual_seed(int(seed))
        self.scheduler.set_timesteps(int(num_inference_steps))
        sample = latents * self.scheduler.init_noise_sigma
        for timestep in self.scheduler.timesteps:
            noise = self._noise(sample, timestep, labels, float(guidance_scale))
            step = self.scheduler.step(noise, timestep, sample, eta=float(eta), generator=generator)
            sample = step.prev_sample
        images = self.vae.decode(sample / self.vae.config.scaling_factor).sample
        return ((images.clamp(-1.0, 1.0) + 1.0) / 2.0).permute(0, 2, 3, 1).cpu().numpy()

    def _noise(
        self, sample: torch.Tensor, timestep: torch.Tensor, labels: torch.Tensor | None, guidance: float
    ) -> torch.Tensor:
        if labels is None:
            return self.unet(sample, timestep).sample
        null = torch.full_like(labels, NULL_CLASS)
        both = self.unet(torch.cat([sample, sample]), timestep, class_labels=torch.cat([null, labels])).sample
        uncond, cond = both.chunk(2)
        return uncond + guidance * (cond - uncond)

    def _labels(self, class_label: int | None, batch: int) -> torch.Tensor | None:
        if class_label is None:
            if self.conditional:
                return torch.full((batch,), NULL_CLASS, dtype=torch.long)
            return None
        if not self.conditional:
            raise ValueError("this pipeline's UNet is unconditional: pass class_label=None")
        classes = self.unet.config.num_class_embeds - 1
        if not 0 <= int(class_label) < classes:
            raise ValueError(f"class_label must be in [0, {classes - 1}], got {class_label}")
        return torch.full((batch,), int(class_label), dtype=torch.long)

    def _checked_latents(self, latents: torch.Tensor) -> torch.Tensor:
        latents = torch.as_tensor(latents, dtype=self.unet.dtype)
        if latents.dim() == 3:
            latents = latents.unsqueeze(0)
        if tuple(latents.shape[1:]) != self.latent_shape:
            raise ValueError(
                f"latents must have shape (B, {', '.join(map(str, self.latent_shape))}), "
                f"got {tuple(latents.shape)}"
            )
        return latents


def build(
    vae_config: dict[str, Any] | None = None, unet_config: dict[str, Any] | None = None, seed: int = 0
) -> DigitLatentDiffusionPipeline:
    """A pipeline of randomly initialised components built from configs (the defaults above)."""
    torch.manual_seed(seed)
    vae = AutoencoderKL(**(vae_config or VAE_CONFIG))
    unet = UNet2DModel(**(unet_config or UNET_CONFIG))
    scheduler = DDIMScheduler(**SCHEDULER_CONFIG)
    return DigitLatentDiffusionPipeline(vae=vae.eval(), unet=unet.eval(), scheduler=scheduler)


def load_pipeline(directory: str | Path) -> DigitLatentDiffusionPipeline:
    """Load a pipeline saved with ``save_pretrained`` from a local directory (no network access)."""
    directory = Path(directory)
    index = directory / "model_index.json"
    if not index.is_file():
        raise TaskError(f"{directory} is not a saved diffusers pipeline: it has no model_index.json")
    components = set(json.loads(index.read_text())) - {"_class_name", "_diffusers_version"}
    missing = {"vae", "unet", "scheduler"} - components
    if missing:
        raise TaskError(f"{index} lacks the components {', '.join(sorted(missing))}")
    pipeline = DigitLatentDiffusionPipeline.from_pretrained(
        str(directory), local_files_only=True, low_cpu_mem_usage=False
    )
    pipeline.set_progress_bar_config(disable=True)
    pipeline.vae.eval()
    pipeline.unet.eval()
    return pipeline
