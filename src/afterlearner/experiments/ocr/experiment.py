"""The OCR experiments: PP-OCRv4's converted recognizer retrofitted for character error rate (see
:mod:`.task`), with the neck's BatchNorms as ℵ-parameters and, smaller, its final LayerNorm alone."""

from __future__ import annotations

import dataclasses

from afterlearner.experiments.base import Experiment
from afterlearner.experiments.ocr.task import make_task

NECK = Experiment(
    name="ocr",
    title="OCR: PP-OCRv4 recognizer (ONNX → torch) on degraded lines, neck BatchNorms retrofitted for CER",
    metric="CER",
    make_task=make_task,
    task_options={"space": "neck-norms"},
    budget=120,
    optimizer="OnePlusOne",
    # Two candidates at a time in two worker processes: each evaluation runs the neck and the CTC
    # head over every ℵ-line (about a second), so the two cores halve the run time.
    workers=2,
    processes=2,
    bound_note="the CER is a corpus ratio (edits over reference characters), not a mean of per-line "
    "losses in [0, 1]: ε is indicative only",
)
#: The last LayerNorm's gain and bias alone (240 ℵ-parameters).
FINAL_NORM = dataclasses.replace(
    NECK,
    name="ocr-final-norm",
    title="OCR: PP-OCRv4 recognizer (ONNX → torch) on degraded lines, final LayerNorm retrofitted for CER",
    task_options={"space": "final-norm"},
)
EXPERIMENTS = (NECK, FINAL_NORM)
