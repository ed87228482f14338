"""Train the JavaScript → Python translator: ``python -m afterlearner.experiments.code_translation.train``.

Ordinary teacher-forced cross-entropy (label smoothing 0.1, Adam) on :data:`TRAIN_PROGRAMS`
generated programs, one CPU thread, a few minutes; writes ``translator.pt``. The ℵ-set and
held-out programs come from other seeds and are removed from the training set if they occur in it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from afterlearner.experiments.code_translation.grammar import generate
from afterlearner.experiments.code_translation.model import WEIGHTS, Seq2Seq, pad
from afterlearner.experiments.code_translation.tokens import (
    BOS,
    EOS,
    Vocabulary,
    javascript_tokens,
    python_tokens,
)

TRAIN_PROGRAMS = 6000
TRAIN_SEED = 0
#: Seeds of the ℵ-set and the held-out programs (see ``task.py``); excluded from training.
EVAL_SEEDS = (1, 2)
EVAL_PROGRAMS = 400


def training_pairs(count: int = TRAIN_PROGRAMS) -> list[tuple[list[str], list[str]]]:
    """(JavaScript tokens, Python tokens) pairs, none of which is an ℵ-set or held-out program."""
    excluded = {p.javascript for seed in EVAL_SEEDS for p in generate(EVAL_PROGRAMS, seed)}
    programs = [p for p in generate(count, TRAIN_SEED) if p.javascript not in excluded]
    return [(javascript_tokens(p.javascript), python_tokens(p.python)) for p in programs]


def train(epochs: int = 6, seed: int = 0, count: int = TRAIN_PROGRAMS) -> dict:
    torch.manual_seed(seed)
    pairs = training_pairs(count)
    source = Vocabulary([t for js, _ in pairs for t in js])
    target = Vocabulary([t for _, py in pairs for t in py])
    model = Seq2Seq(len(source), len(target))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps = epochs * ((len(pairs) + 63) // 64)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps, pct_start=0.1)
    loss_function = torch.nn.CrossEntropyLoss(ignore_index=0, label_smoothing=0.1)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(pairs)).tolist()
        total, batches = 0.0, 0
        for start in range(0, len(order), 64):
            batch = [pairs[i] for i in order[start : start + 64]]
            src = pad([source.encode(js) + [source.index[EOS]] for js, _ in batch])
            tgt = pad([[target.index[BOS]] + target.encode(py) + [target.index[EOS]] for _, py in batch])
            logits = model(src, tgt[:, :-1])
            loss = loss_function(logits.reshape(-1, logits.shape[-1]), tgt[:, 1:].reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            total, batches = total + float(loss.detach()), batches + 1
        print(f"epoch {epoch + 1}/{epochs}: cross-entropy {total / batches:.4f}", flush=True)
    model.eval()
    return {
        "config": model.config,
        "state_dict": model.state_dict(),
        "source": source.tokens,
        "target": target.tokens,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--programs", type=int, default=TRAIN_PROGRAMS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    checkpoint = train(args.epochs, count=args.programs)
    torch.save(checkpoint, args.out)
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB) in {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
