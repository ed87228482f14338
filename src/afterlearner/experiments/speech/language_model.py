"""The recogniser's language model and dictionary, built in code from the training sentences.

A trigram model with absolute discounting and back-off (Ney, Essen and Kneser 1994), written in the
ARPA text format pocketsphinx reads, over the words of the training sentences; and a pronunciation
dictionary holding those words' entries (alternate pronunciations included) from the CMU
dictionary bundled with pocketsphinx. Held-out sentences are new word sequences: the model gives
them probability through its back-off to bigrams and unigrams.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

#: Absolute discount subtracted from every seen n-gram count.
DISCOUNT = 0.5
START, END = "<s>", "</s>"


def _counts(sentences: Sequence[str]) -> list[Counter[tuple[str, ...]]]:
    counts: list[Counter[tuple[str, ...]]] = [Counter(), Counter(), Counter()]
    for text in sentences:
        words = [START, *text.split(), END]
        for order in range(1, 4):
            for i in range(len(words) - order + 1):
                gram = tuple(words[i : i + order])
                if gram != (START,):
                    counts[order - 1][gram] += 1
    return counts


def arpa(sentences: Sequence[str], discount: float = DISCOUNT) -> str:
    """A back-off trigram model of ``sentences`` (whitespace-separated words) as ARPA text.

    Unigrams are maximum likelihood (every word was seen); a bigram or trigram seen c times with a
    history seen h times gets (c − D) / h, and the history's back-off weight spreads the removed
    mass over the lower-order probabilities of the words not seen after it.
    """
    if not sentences:
        raise ValueError("the language model needs at least one sentence")
    if not 0 < discount < 1:
        raise ValueError(f"discount must be in (0, 1), got {discount}")
    counts = _counts(sentences)
    total = sum(counts[0].values())
    prob: dict[tuple[str, ...], float] = {gram: c / total for gram, c in counts[0].items()}
    prob[(START,)] = 0.0  # never predicted; log10 written as -99
    history_count: dict[tuple[str, ...], int] = defaultdict(int)
    followers: dict[tuple[str, ...], list[tuple[str, ...]]] = defaultdict(list)
    backoff: dict[tuple[str, ...], float] = {}
    for order in (2, 3):
        for gram, count in counts[order - 1].items():
            history_count[gram[:-1]] += count
            followers[gram[:-1]].append(gram)
        for history, grams in followers.items():
            if len(history) != order - 1:
                continue
            seen_lower = 0.0
            for gram in grams:
                prob[gram] = (counts[order - 1][gram] - discount) / history_count[history]
                seen_lower += _lower(prob, backoff, gram[1:])
            left = discount * len(grams) / history_count[history]
            backoff[history] = left / max(1.0 - seen_lower, 1e-12)
    lines = ["\\data\\"]
    lines += [f"ngram {order}={len(counts[order - 1]) + (order == 1)}" for order in (1, 2, 3)]
    for order in (1, 2, 3):
        lines += ["", f"\\{order}-grams:"]
        grams = sorted(g for g in prob if len(g) == order)
        for gram in grams:
            p = prob[gram]
            text = f"{math.log10(p):.6f}" if p > 0 else "-99.000000"
            line = f"{text}\t{' '.join(gram)}"
            if order < 3 and gram in backoff:
                line += f"\t{math.log10(backoff[gram]):.6f}"
            lines.append(line)
    lines += ["", "\\end\\", ""]
    return "\n".join(lines)


def _lower(
    prob: dict[tuple[str, ...], float], backoff: dict[tuple[str, ...], float], gram: tuple[str, ...]
) -> float:
    """The back-off probability of ``gram`` (its own if seen, else back-off × shorter)."""
    if gram in prob:
        return prob[gram]
    return backoff.get(gram[:-1], 1.0) * _lower(prob, backoff, gram[1:])


def dictionary(words: Sequence[str], cmudict: Path) -> str:
    """The entries of ``words`` in the CMU dictionary file ``cmudict`` (all pronunciations)."""
    wanted = set(words)
    lines = []
    found: set[str] = set()
    with open(cmudict, encoding="utf-8") as source:
        for line in source:
            head = line.split(maxsplit=1)[0] if line.strip() else ""
            word = head.split("(", 1)[0]
            if word in wanted:
                lines.append(line.rstrip("\n"))
                found.add(word)
    missing = wanted - found
    if missing:
        raise ValueError(f"no pronunciation in {cmudict.name} for: {', '.join(sorted(missing))}")
    return "\n".join(lines) + "\n"
