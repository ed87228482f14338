"""The OCR task: PP-OCRv4's recognizer, converted from ONNX, retrofitted for character error rate.

The ℵ-set and the held-out set are disjoint slices of one stream of generated lines (no text in
both), rendered in the new condition (:mod:`.lines`). The ℵ-parameters live in the recognizer's
neck, after the convolutional backbone, so the backbone's output is computed once (the library's
prefix cache) and each candidate runs only the neck and the head.
"""

from __future__ import annotations

from typing import Literal

from afterlearner.experiments.ocr.lines import Degradation, make_lines
from afterlearner.experiments.ocr.metric import CharacterErrorRate, best_path
from afterlearner.experiments.ocr.model import Recognizer, load_recognizer
from afterlearner.losses import DatasetLoss
from afterlearner.presets import norm_gains
from afterlearner.space import Aleph
from afterlearner.task import Task

Space = Literal["neck-norms", "final-norm"]
#: ℵ-set and held-out sizes (lines): full run, reduced run (tests).
SIZES = {False: (200, 300), True: (12, 12)}
#: Lines per forward pass (more costs memory for no speed on two cores).
BATCH = 16
#: The seed of the generated lines (their texts and their degradations).
SEED = 0
#: The neck's five BatchNorms (after the backbone: conv 480→60, 60→120, 120→480, 960→60, 60→120).
NECK_NORMS = "p2o/BatchNormalization/[1-5]"
#: The gain and bias of the neck's last LayerNorm (the SVTR blocks' output norm), an ONNX initializer
#: that onnx2torch keeps as a buffer (120 + 120 numbers).
FINAL_NORM = ("initializers.onnx_initializer_260", "initializers.onnx_initializer_261")


def add_neck_norms(aleph: Aleph) -> None:
    """One factor per channel on each neck BatchNorm's gain, one offset per channel on its bias.

    These are where the backbone's features are re-weighted for the sequence model: a degraded input
    changes the features' per-channel statistics, and per-channel gains and shifts are what
    recalibrates them (the idea behind re-estimating normalization statistics for a new domain).
    """
    norm_gains(aleph, pattern=NECK_NORMS, per="channel")


def add_final_norm(aleph: Aleph) -> None:
    """The last LayerNorm's per-feature gain (as factors) and bias (as offsets): 240 numbers."""
    aleph.add(FINAL_NORM[0], mode="scale", per="element")
    aleph.add(FINAL_NORM[1])


def cer_loss(recognizer: Recognizer, count: int, offset: int, degradation: Degradation) -> DatasetLoss:
    """The corpus CER of the recognizer on ``count`` lines starting at ``offset`` of the line stream."""
    inputs, texts = make_lines(offset + count, SEED, degradation)
    return DatasetLoss(
        inputs[offset:],
        texts[offset:],
        metric=CharacterErrorRate(recognizer.charset),
        forward=best_path,
        batch_size=BATCH,
    )


def make_task(reduced: bool = False, space: Space = "neck-norms") -> Task:
    """The task for one ℵ-space; ``reduced`` uses a few lines (the test-suite version)."""
    adders = {"neck-norms": add_neck_norms, "final-norm": add_final_norm}
    if space not in adders:
        raise ValueError(f"space must be one of {', '.join(adders)}, got {space!r}")
    recognizer = load_recognizer()
    aleph_size, test_size = SIZES[bool(reduced)]
    degradation = Degradation()
    aleph = Aleph(recognizer.module)
    adders[space](aleph)
    return Task(
        aleph=aleph,
        loss=cer_loss(recognizer, aleph_size, 0, degradation),
        test_loss=cer_loss(recognizer, test_size, aleph_size, degradation),
        name=f"ocr-{space}",
        n=aleph_size,
        description=f"PP-OCRv4 recognizer (onnx2torch) on degraded lines, CER; ℵ-parameters: {space}",
    )
