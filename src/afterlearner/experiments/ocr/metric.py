"""Character error rate of the recognizer's CTC outputs: greedy decoding, then jiwer's corpus CER."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def ctc_greedy(outputs: torch.Tensor, charset: Sequence[str], blank: int = 0) -> list[str]:
    """Best path decoding: the argmax class at each step, repeats merged, blanks dropped."""
    best = outputs.argmax(dim=-1).cpu().numpy()
    texts = []
    for row in best:
        chars, previous = [], -1
        for index in row:
            if index != previous and index != blank:
                chars.append(charset[index])
            previous = index
        texts.append("".join(chars))
    return texts


class CharacterErrorRate:
    """``metric(outputs, texts)``: the corpus CER (edits over reference characters) of the decoded lines.

    A :class:`~afterlearner.losses.DatasetLoss` metric: outputs ``(n, steps, classes)``, targets the
    reference texts. The held-out interval is a paired bootstrap of this corpus metric over lines.
    """

    def __init__(self, charset: Sequence[str]) -> None:
        self.charset = list(charset)
        self.__name__ = "cer"

    def __call__(self, outputs: torch.Tensor, targets: Sequence[str]) -> float:
        import jiwer

        return float(jiwer.cer(list(targets), ctc_greedy(outputs, self.charset)))
