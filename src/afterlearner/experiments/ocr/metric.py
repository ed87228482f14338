"""Character error rate of the recognizer: best-path CTC decoding, then jiwer's corpus CER.

The loss's forward pass keeps only the best class at each step (:func:`best_path`), not the
6,625 class scores: greedy decoding needs nothing more, and the outputs that the held-out bootstrap
resamples thousands of times shrink from 6,625 floats per step to one integer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def best_path(model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The forward of the CER loss: the recognizer's most likely class at each step, ``(n, steps)``."""
    return model(inputs).argmax(dim=-1)


def ctc_greedy(classes: torch.Tensor, charset: Sequence[str], blank: int = 0) -> list[str]:
    """Best-path decoding of class indices ``(n, steps)``: repeats merged, blanks dropped."""
    texts = []
    for row in classes.cpu().numpy():
        chars, previous = [], -1
        for index in row:
            if index != previous and index != blank:
                chars.append(charset[index])
            previous = index
        texts.append("".join(chars))
    return texts


class CharacterErrorRate:
    """``metric(classes, texts)``: the corpus CER (edits over reference characters) of the decoded lines.

    A :class:`~afterlearner.losses.DatasetLoss` metric for the forward :func:`best_path`: outputs
    ``(n, steps)`` class indices, targets the reference texts. The held-out interval is a paired
    bootstrap of this corpus metric over lines.
    """

    def __init__(self, charset: Sequence[str]) -> None:
        self.charset = list(charset)
        self.__name__ = "cer"

    def __call__(self, classes: torch.Tensor, targets: Sequence[str]) -> float:
        import jiwer

        return float(jiwer.cer(list(targets), ctc_greedy(classes, self.charset)))
