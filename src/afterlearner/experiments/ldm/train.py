"""Train the tiny latent diffusion model and the judge, and save them beside this file.

    python -m afterlearner.experiments.ldm.train [--out DIR] [--vae-steps N] [--unet-steps N]

Three stages, on one CPU thread, a few minutes in all:

1. the autoencoder (``AutoencoderKL``): reconstruction error plus a small KL term; its
   ``scaling_factor`` is then set to 1 / std of the training latents (the diffusers convention
   that makes the latents roughly unit-variance);
2. the UNet: noise prediction on the training latents at uniformly drawn timesteps, with the class
   label dropped to the "no class" token 10% of the time (classifier-free guidance);
3. the judge, a small classifier whose features the simulated users compare, and a second judge
   (another seed) that only scores results after the fact (the held-out check).

The result is a diffusers pipeline directory (``weights/pipeline``, loaded by ``load_pipeline``),
``weights/judge.pt``, ``weights/judge_heldout.pt`` and ``weights/training.json`` (the figures
measured at the end of training).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from afterlearner.experiments.ldm import data
from afterlearner.experiments.ldm.judge import accuracy, to_tensor, train_judge
from afterlearner.experiments.ldm.model import NULL_CLASS, DigitLatentDiffusionPipeline, build

WEIGHTS = Path(__file__).with_name("weights")
KL_WEIGHT = 1e-4
LABEL_DROP = 0.1


def train_vae(
    pipeline: DigitLatentDiffusionPipeline, images: torch.Tensor, steps: int, batch: int = 64
) -> float:
    """Fit the autoencoder; returns the final reconstruction MSE on the training images (in [-1, 1] units)."""
    vae = pipeline.vae.train()
    optimizer = torch.optim.Adam(vae.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for _ in range(steps):
        x = images[torch.randint(len(images), (batch,))]
        posterior = vae.encode(x).latent_dist
        reconstruction = vae.decode(posterior.sample()).sample
        kl = posterior.kl().mean() / x[0].numel()
        loss = torch.nn.functional.mse_loss(reconstruction, x) + KL_WEIGHT * kl
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    vae.eval()
    with torch.no_grad():
        posterior = vae.encode(images).latent_dist
        mse = float(torch.nn.functional.mse_loss(vae.decode(posterior.mode()).sample, images))
        vae.register_to_config(scaling_factor=float(1.0 / posterior.mode().std()))
    return mse


def train_unet(
    pipeline: DigitLatentDiffusionPipeline,
    images: torch.Tensor,
    labels: torch.Tensor,
    steps: int,
    batch: int = 128,
) -> float:
    """Noise-prediction training in latent space; returns the mean loss of the last 100 steps."""
    with torch.no_grad():
        posterior = pipeline.vae.encode(images).latent_dist
    scale = pipeline.vae.config.scaling_factor
    unet, scheduler = pipeline.unet.train(), pipeline.scheduler
    optimizer = torch.optim.AdamW(unet.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    recent: list[float] = []
    for _ in range(steps):
        index = torch.randint(len(images), (batch,))
        mean, std = posterior.mean[index], posterior.std[index]
        latents = (mean + std * torch.randn_like(mean)) * scale
        noise = torch.randn_like(latents)
        timesteps = torch.randint(scheduler.config.num_train_timesteps, (batch,))
        classes = torch.where(torch.rand(batch) < LABEL_DROP, NULL_CLASS, labels[index])
        noisy = scheduler.add_noise(latents, noise, timesteps)
        prediction = unet(noisy, timesteps, class_labels=classes).sample
        loss = torch.nn.functional.mse_loss(prediction, noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        recent = (recent + [loss.item()])[-100:]
    unet.eval()
    return sum(recent) / len(recent)


def sample_accuracy(
    pipeline: DigitLatentDiffusionPipeline,
    judge: torch.nn.Module,
    per_class: int = 20,
    guidance_scale: float = 2.0,
    steps: int = 10,
) -> float:
    """How often the judge recognises the requested class in generated samples (a quality check)."""
    generator = torch.Generator().manual_seed(1)
    hits = []
    for label in range(10):
        latents = torch.randn((per_class, *pipeline.latent_shape), generator=generator)
        images = to_tensor(
            pipeline(latents, class_label=label, guidance_scale=guidance_scale, num_inference_steps=steps)
        )
        hits.append(accuracy(judge, images, torch.full((per_class,), label)))
    return sum(hits) / len(hits)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS, help="directory to write the weights to")
    parser.add_argument("--vae-steps", type=int, default=600)
    parser.add_argument("--unet-steps", type=int, default=2000)
    parser.add_argument("--judge-epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start, cpu_start = time.perf_counter(), time.process_time()
    digits = data.load()
    pipeline = build(seed=args.seed)
    vae_mse = train_vae(pipeline, digits.train_images, args.vae_steps)
    scale = pipeline.vae.config.scaling_factor
    print(f"autoencoder: reconstruction MSE {vae_mse:.4f}, scaling factor {scale:.3f}")
    unet_loss = train_unet(pipeline, digits.train_images, digits.train_labels, args.unet_steps)
    print(f"unet: final noise-prediction loss {unet_loss:.4f}")
    judge = train_judge(digits.train_images, digits.train_labels, seed=args.seed, epochs=args.judge_epochs)
    judge_accuracy = accuracy(judge, digits.held_images, digits.held_labels)
    heldout_judge = train_judge(
        digits.train_images, digits.train_labels, seed=args.seed + 1, epochs=args.judge_epochs
    )
    heldout_accuracy = accuracy(heldout_judge, digits.held_images, digits.held_labels)
    print(f"judges: held-out accuracy {judge_accuracy:.3f} (user's), {heldout_accuracy:.3f} (referee)")
    training_seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    samples = sample_accuracy(pipeline, judge)
    print(f"generated samples recognised as their class (guidance 2, 10 DDIM steps): {samples:.3f}")
    args.out.mkdir(parents=True, exist_ok=True)
    pipeline.save_pretrained(args.out / "pipeline")
    torch.save(judge.state_dict(), args.out / "judge.pt")
    torch.save(heldout_judge.state_dict(), args.out / "judge_heldout.pt")
    figures = {
        "vae_reconstruction_mse": round(vae_mse, 5),
        "unet_loss": round(unet_loss, 5),
        "judge_accuracy": round(judge_accuracy, 4),
        "referee_judge_accuracy": round(heldout_accuracy, 4),
        "sample_class_accuracy": round(samples, 4),
        "training_wall_seconds": round(training_seconds, 1),
        "training_cpu_seconds": round(cpu_seconds, 1),
        "threads": 1,
        "vae_steps": args.vae_steps,
        "unet_steps": args.unet_steps,
        "judge_epochs": args.judge_epochs,
        "seed": args.seed,
    }
    (args.out / "training.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"trained in {training_seconds:.0f} s wall, {cpu_seconds:.0f} s CPU; saved to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
