"""Code translation retrofitted for computational accuracy or BLEU: JavaScript → Python.

The small transformer of :mod:`.model` was trained with teacher-forced cross-entropy; what users
want is code that *works*. Computational accuracy (CA) is the fraction of source functions whose
translation, run in the :mod:`.sandbox`, returns the same values as the reference on every unit
input; BLEU (sacrebleu, on code tokens) is the usual text-overlap score. Both are non-differentiable
functions of the decoded text. Retrofitting searches the decoding hyperparameters (beam size,
length penalty) and, by default, the output layer's bias (for CA) or one factor per LayerNorm gain
of the decoder's last layer and final norm (for BLEU): the ℵ-spaces that did best on a validation
split of 300 programs (:mod:`.choose_aleph`). It searches on 100 ℵ-programs and is checked on 600
held-out programs; the three sets come from three seeds, are disjoint and were not trained on.
The guarded variant retrofits CA with BLEU guarded (:data:`BLEU_TOLERANCE`).

The CA ℵ-loss is a mean of per-program losses in {0, 1}, so the overfitting bound applies with
n = number of programs. Corpus BLEU is not a mean of per-sample losses: the bound is then only
indicative.

The held-out losses show their parts, so the held-out gain gets a paired interval over programs:
1 − CA as one 0/1 loss per program (:class:`PerProgramCA`), 1 − BLEU/100 as a corpus metric over
programs (:class:`CorpusBLEU`: each program's n-gram statistics, summed over any resample of programs,
give the corpus BLEU of that resample exactly, without translating or tokenising again).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import sacrebleu
import torch
from torch import nn

from afterlearner.experiments.code_translation.grammar import (
    Program,
    generate,
    reference_outputs,
    unit_inputs,
)
from afterlearner.experiments.code_translation.model import load_translator
from afterlearner.experiments.code_translation.sandbox import run_functions
from afterlearner.experiments.code_translation.tokens import javascript_tokens, python_code, python_tokens
from afterlearner.space import Aleph
from afterlearner.task import Task

Metric = Literal["ca", "bleu"]
#: Seeds of the three evaluation splits: the ℵ-set (searched), the validation split (where the
#: ℵ-space is chosen, see :mod:`.choose_aleph`) and the held-out set (only reported).
ALEPH_SEED, TEST_SEED, VALIDATION_SEED = 1, 2, 3
ALEPH_PROGRAMS, VALIDATION_PROGRAMS, TEST_PROGRAMS = 100, 300, 600
REDUCED_ALEPH_PROGRAMS, REDUCED_VALIDATION_PROGRAMS, REDUCED_TEST_PROGRAMS = 16, 16, 16
#: Unit inputs per program for computational accuracy.
UNIT_INPUTS = 6


class Translates(Protocol):
    """What the task needs of a translator: a torch model and token lists in, token lists out."""

    model: nn.Module

    def translate(self, sources: list[list[str]]) -> list[list[str]]: ...


@dataclass
class Case:
    """One program to translate: source tokens, reference tokens, unit inputs, expected output reprs."""

    source: list[str]
    reference: list[str]
    inputs: list[list[int]]
    expected: list[str]


def make_cases(programs: Sequence[Program]) -> list[Case]:
    cases = []
    for program in programs:
        inputs = unit_inputs(program.arity, UNIT_INPUTS)
        expected = [repr(value)[:200] for value in reference_outputs(program, inputs)]
        cases.append(
            Case(javascript_tokens(program.javascript), python_tokens(program.python), inputs, expected)
        )
    return cases


def computational_accuracy(cases: Sequence[Case], translations: Sequence[list[str]]) -> list[bool]:
    """Per case: does the translated function (run in the sandbox) match the reference on all inputs?"""
    outcomes = run_functions([python_code(t) for t in translations], [case.inputs for case in cases])
    return [
        outcome.ok and outcome.outputs == case.expected for outcome, case in zip(outcomes, cases, strict=True)
    ]


def bleu(cases: Sequence[Case], translations: Sequence[list[str]]) -> float:
    """Corpus BLEU (0-100) of the translations against the references, on code tokens."""
    hypotheses = [" ".join(t) for t in translations]
    references = [" ".join(case.reference) for case in cases]
    return sacrebleu.corpus_bleu(hypotheses, [references], tokenize="none").score


def _corpus_bleu() -> sacrebleu.BLEU:
    """The BLEU that :func:`sacrebleu.corpus_bleu` builds for :func:`bleu` (its defaults, no tokeniser)."""
    return sacrebleu.BLEU(tokenize="none")


def bleu_statistics(cases: Sequence[Case], translations: Sequence[list[str]]) -> np.ndarray:
    """Per program, BLEU's sufficient statistics: (hypothesis length, reference length, matching
    1- to 4-grams, hypothesis 1- to 4-grams), an integer array (programs, 10).

    Corpus BLEU is a function of their sum: :func:`bleu_of_statistics` of all rows is :func:`bleu`,
    to the bit (sacrebleu computes it the same way, and uses the same statistics for its own bootstrap).
    """
    hypotheses = [" ".join(t) for t in translations]
    references = [" ".join(case.reference) for case in cases]
    rows = _corpus_bleu()._extract_corpus_statistics(hypotheses, [references])
    return np.asarray(rows, dtype=np.int64).reshape(len(hypotheses), -1)


def bleu_of_statistics(statistics: np.ndarray) -> float:
    """Corpus BLEU (0-100) of the programs whose :func:`bleu_statistics` rows are given."""
    totals = [int(value) for value in np.asarray(statistics).sum(axis=0)]
    return _corpus_bleu()._compute_score_from_stats(totals).score


def state_fingerprint(translator: Translates) -> tuple[object, object, bytes]:
    """What a translation depends on: the decoding settings and every parameter and buffer, hashed."""
    digest = hashlib.blake2b(digest_size=16)
    for tensor in (*translator.model.parameters(), *translator.model.buffers()):
        digest.update(tensor.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    settings = getattr(translator, "beam_size", None), getattr(translator, "length_penalty", None)
    return *settings, digest.digest()


class SharedTranslations:
    """The last translation of a set of programs, reused while the model and its decoding settings
    are unchanged: a guarded loss measures CA and BLEU of one candidate from one translation."""

    def __init__(self) -> None:
        self._cases: list[Case] | None = None
        self._key: tuple[object, object, bytes] | None = None
        self._translations: list[list[str]] = []

    def translate(self, translator: Translates, cases: list[Case]) -> list[list[str]]:
        key = state_fingerprint(translator)
        if cases is not self._cases or key != self._key:
            self._translations = translator.translate([case.source for case in cases])
            self._cases, self._key = cases, key
        return self._translations


class TranslationLoss:
    """1 − CA or 1 − BLEU/100 of ``translator`` on ``cases``; :meth:`metrics` gives CA, BLEU, exact match.

    ``metric`` (``"ca"`` or ``"bleu"``) is kept as ``kind``. Losses given the same ``shared``
    translate a candidate once between them.
    """

    def __init__(
        self,
        translator: Translates,
        cases: list[Case],
        metric: Metric,
        shared: SharedTranslations | None = None,
    ) -> None:
        if metric not in ("ca", "bleu"):
            raise ValueError(f"metric must be 'ca' or 'bleu', got {metric!r}")
        if not cases:
            raise ValueError("no programs to translate")
        self.translator, self.cases, self.kind, self.shared = translator, cases, metric, shared

    def _translations(self) -> list[list[str]]:
        if self.shared is not None:
            return self.shared.translate(self.translator, self.cases)
        return self.translator.translate([case.source for case in self.cases])

    def metrics(self, model: nn.Module | None = None) -> dict[str, float]:
        translations = self._translations()
        correct = computational_accuracy(self.cases, translations)
        return {
            "computational accuracy": sum(correct) / len(correct),
            "BLEU": bleu(self.cases, translations),
            "exact match": sum(t == c.reference for t, c in zip(translations, self.cases, strict=True))
            / len(self.cases),
        }

    def __call__(self, model: nn.Module | None = None) -> float:
        translations = self._translations()
        if self.kind == "bleu":
            return 1.0 - bleu(self.cases, translations) / 100.0
        correct = computational_accuracy(self.cases, translations)
        return 1.0 - sum(correct) / len(correct)


class PerProgramCA(TranslationLoss):
    """The held-out form of 1 − CA: calling it gives one loss per program (1: the translation fails its
    unit inputs, 0: it passes), a 1-D array whose mean is the loss; ``heldout`` pairs the programs."""

    def __init__(self, translator: Translates, cases: list[Case]) -> None:
        super().__init__(translator, cases, "ca")

    def __call__(self, model: nn.Module | None = None) -> np.ndarray:  # type: ignore[override]
        correct = computational_accuracy(self.cases, self._translations())
        return 1.0 - np.asarray(correct, dtype=float)


class CorpusBLEU(TranslationLoss):
    """The held-out form of 1 − BLEU/100: a corpus metric over programs (the ``DatasetLoss`` interface).

    :meth:`outputs` are the programs' BLEU statistics (one row per program, from one translation of
    all of them); :meth:`metric` is 1 − BLEU/100 of the programs whose rows it is given, so ``heldout``
    recomputes it on resampled programs at the cost of a sum. The statistics already hold each
    program's comparison with its reference: ``targets`` (the programs) only say what the items are.
    """

    def __init__(self, translator: Translates, cases: list[Case]) -> None:
        super().__init__(translator, cases, "bleu")
        self.targets = cases

    def outputs(self, model: nn.Module | None = None) -> np.ndarray:
        return bleu_statistics(self.cases, self._translations())

    def metric(self, outputs: np.ndarray, targets: Any = None) -> float:
        return 1.0 - bleu_of_statistics(outputs) / 100.0

    def score(self, outputs: np.ndarray) -> float:
        return self.metric(outputs, self.targets)


def held_out_loss(translator: Translates, cases: list[Case], metric: Metric) -> TranslationLoss:
    """The held-out loss of ``metric`` in the form that shows its parts (per program, or over programs)."""
    if metric not in ("ca", "bleu"):
        raise ValueError(f"metric must be 'ca' or 'bleu', got {metric!r}")
    return PerProgramCA(translator, cases) if metric == "ca" else CorpusBLEU(translator, cases)


#: ℵ-space choices. ``"norms"``: beam size, length penalty and one factor per gain tensor of the
#: last decoder layer's LayerNorms and the final decoder LayerNorm (6 scalars); ``"decoding"``: beam
#: size and length penalty only; ``"norms-elementwise"``: the gains element by element (offsets);
#: ``"output-bias"``: decoding and the output layer's bias (one offset per target token).
ALEPH_CHOICES = ("norms", "decoding", "norms-elementwise", "output-bias")


def last_decoder_norms(model: nn.Module) -> list[str]:
    """Names of the LayerNorm gains of the last decoder layer and of the decoder's final norm."""
    import re

    names = [
        n for n, _ in model.named_parameters() if "decoder" in n and "norm" in n and n.endswith("weight")
    ]
    indices = [int(m.group(1)) for n in names if (m := re.search(r"\.(\d+)\.", n))]
    last = max(indices, default=None)
    return [
        n
        for n in names
        if re.search(r"\.(\d+)\.", n) is None or int(re.search(r"\.(\d+)\.", n).group(1)) == last
    ]


#: The default ℵ-space of each metric: the choice with the largest gain on the validation split
#: (``python -m afterlearner.experiments.code_translation.choose_aleph``; docs/code_translation.md).
DEFAULT_ALEPH: dict[str, str] = {"ca": "output-bias", "bleu": "norms"}


def translation_aleph(translator: Translates, choice: str = "norms-elementwise", max_beam: int = 6) -> Aleph:
    """Decoding hyperparameters (+ decoder LayerNorm gains) of any translator with ``beam_size``."""
    if choice not in ALEPH_CHOICES:
        raise ValueError(f"aleph must be one of {', '.join(ALEPH_CHOICES)}, got {choice!r}")
    aleph = Aleph(translator.model)
    aleph.hyper(translator, "beam_size", low=1, high=max_beam, step=1.0)
    aleph.hyper(translator, "length_penalty", low=0.0, high=2.0, step=0.3)
    if choice == "output-bias":
        aleph.add(output_bias(translator.model), step=0.3)
    for name in last_decoder_norms(translator.model) if choice.startswith("norms") else []:
        if choice == "norms":
            aleph.add(name, mode="scale", step=0.05)
        else:
            aleph.add(name, step=0.05)
    return aleph


def output_bias(model: nn.Module) -> str:
    """Name of the bias of the layer that produces the token logits."""
    for name in ("output.bias", "final_logits_bias", "lm_head.bias"):
        if name in dict(model.named_parameters()) or name in dict(model.named_buffers()):
            return name
    raise ValueError("the model has no output bias (output.bias, final_logits_bias or lm_head.bias)")


def translation_task(
    translator: Translates,
    aleph_cases: list[Case],
    test_cases: list[Case],
    metric: Metric,
    aleph: str = "norms-elementwise",
    name: str | None = None,
) -> Task:
    """A retrofitting task of any translator on the given ℵ-set and held-out cases."""
    return Task(
        aleph=translation_aleph(translator, aleph),
        loss=TranslationLoss(translator, aleph_cases, metric),
        test_loss=held_out_loss(translator, test_cases, metric),
        name=name or f"code-translation-{metric}",
        n=len(aleph_cases),
        description=f"JavaScript → Python translation retrofitted for {metric}",
    )


@functools.lru_cache(maxsize=1)
def _training_sources() -> frozenset[str]:
    """The JavaScript of every training program (generated again: a few seconds, once per process)."""
    from afterlearner.experiments.code_translation.train import (
        EVAL_PROGRAMS,
        EVAL_SEEDS,
        TRAIN_PROGRAMS,
        TRAIN_SEED,
    )

    excluded = {p.javascript for seed in EVAL_SEEDS for p in generate(EVAL_PROGRAMS, seed)}
    return frozenset(p.javascript for p in generate(TRAIN_PROGRAMS, TRAIN_SEED)) - excluded


def _fresh(seed: int, count: int, excluded: set[str]) -> list[Program]:
    """The first ``count`` programs of ``seed`` whose source is not in ``excluded`` nor in training."""
    training = _training_sources()
    programs: list[Program] = []
    pool = count
    while len(programs) < count:
        pool = 2 * pool + 64
        programs = [
            p for p in generate(pool, seed) if p.javascript not in excluded and p.javascript not in training
        ][:count]
    return programs


@functools.lru_cache(maxsize=2)
def _splits(reduced: bool) -> tuple[tuple[Program, ...], tuple[Program, ...], tuple[Program, ...]]:
    """(ℵ-set, validation split, held-out set): disjoint, and none of their programs occurs in training."""
    aleph_count = REDUCED_ALEPH_PROGRAMS if reduced else ALEPH_PROGRAMS
    validation_count = REDUCED_VALIDATION_PROGRAMS if reduced else VALIDATION_PROGRAMS
    test_count = REDUCED_TEST_PROGRAMS if reduced else TEST_PROGRAMS
    aleph = _fresh(ALEPH_SEED, aleph_count, set())
    seen = {p.javascript for p in aleph}
    validation = _fresh(VALIDATION_SEED, validation_count, seen)
    seen |= {p.javascript for p in validation}
    return tuple(aleph), tuple(validation), tuple(_fresh(TEST_SEED, test_count, seen))


def experiment_cases(reduced: bool = False) -> tuple[list[Case], list[Case]]:
    """The ℵ-set and the held-out set (disjoint, and excluded from training)."""
    aleph, _, test = _splits(reduced)
    return make_cases(aleph), make_cases(test)


def validation_cases(reduced: bool = False) -> list[Case]:
    """The validation split: where the ℵ-space is chosen, so that the held-out set decides nothing."""
    return make_cases(_splits(reduced)[1])


#: The guard of the guarded variant: 1 − BLEU/100 on the ℵ-set may not get worse than the trained
#: model's at all (tolerance 0), so CA improves only where BLEU does not drop.
BLEU_TOLERANCE = 0.0


def make_task(
    reduced: bool = False,
    metric: Metric = "ca",
    aleph: str | None = None,
    weights: str | Path | None = None,
    guards: bool = False,
) -> Task:
    """The experiment with the committed model; ``metric`` is ``"ca"`` or ``"bleu"``.

    ``aleph`` defaults to the metric's choice on the validation split (:data:`DEFAULT_ALEPH`).
    ``guards`` (CA only): BLEU is guarded, with tolerance :data:`BLEU_TOLERANCE` on the ℵ-set and
    checked on the held-out programs at the end.
    """
    if guards and metric != "ca":
        raise ValueError("the guarded variant retrofits CA with BLEU guarded: metric must be 'ca'")
    translator = load_translator(weights)
    aleph_cases, test_cases = experiment_cases(reduced)
    task = translation_task(translator, aleph_cases, test_cases, metric, aleph or DEFAULT_ALEPH[metric])
    if guards:
        shared = SharedTranslations()
        task.loss = TranslationLoss(translator, aleph_cases, "ca", shared)
        task.guards = {
            "bleu": (
                TranslationLoss(translator, aleph_cases, "bleu", shared),
                BLEU_TOLERANCE,
                TranslationLoss(translator, test_cases, "bleu"),
            )
        }
        task.name = "code-translation-ca-guarded"
    return task
