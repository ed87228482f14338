"""Is a held-out gain real? The held-out loss before and after, the gain with its interval and p-value.

A held-out loss that went down by 5 words of 231 may be noise. When the held-out loss can show its
parts, the gain (trained loss − retrofitted loss, positive = better) gets a 95% interval and a
p-value from a *paired* comparison — the same held-out items scored by both models:

* a :class:`~afterlearner.losses.DatasetLoss` (or any loss with ``outputs(model)``, ``metric`` and
  ``targets``): the items are resampled together for both models and the metric recomputed on each
  resample (a paired bootstrap of the metric itself: right for balanced error, F1, BLEU, WER, a
  Fréchet distance — any corpus-level metric); the p-value is the bootstrap's two-sided one;
* a ``test_loss`` that returns a 1-D array of per-sample losses (the loss is its mean): a paired
  bootstrap of the mean difference for the interval, a paired sign-flip permutation test for the
  p-value;
* any other ``test_loss`` (a number): the gain, without an interval.

The verdict says "holds" only when the interval excludes zero on the better side, "worse" when it
excludes zero on the other, "not significant" otherwise. The held-out loss itself gets its interval
too: Clopper–Pearson for 0/1 per-sample losses, a bootstrap otherwise. Every resampling is seeded,
so the same models give the same intervals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from scipy import stats

from afterlearner.evaluators.base import as_loss

#: Resamples of the paired bootstrap (and sign flips of the permutation test).
RESAMPLES = 2000
#: Confidence level of every interval.
LEVEL = 0.95
#: Seed of every resampling (the figures depend only on the two models and the held-out set).
SEED = 0

HOLDS, NOT_SIGNIFICANT, WORSE = "holds", "not significant", "worse"


@dataclass(frozen=True)
class Interval:
    """A value with its 95% interval; ``low``/``high`` None when there is no interval to give."""

    value: float
    low: float | None = None
    high: float | None = None
    method: str = ""

    def __str__(self) -> str:
        if self.low is None or self.high is None:
            return f"{self.value:.4g}"
        return f"{self.value:.4g} [{self.low:.4g}, {self.high:.4g}]"


@dataclass(frozen=True)
class Gain(Interval):
    """The held-out gain, trained loss − retrofitted loss (positive: the retrofit is better)."""

    p_value: float | None = None
    n: int | None = None

    @property
    def verdict(self) -> str:
        """``"holds"`` only when the interval excludes zero on the better side."""
        if self.low is None or self.high is None:
            return NOT_SIGNIFICANT
        if self.low > 0:
            return HOLDS
        if self.high < 0:
            return WORSE
        return NOT_SIGNIFICANT

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class HeldOut:
    """What the held-out set says of the trained and of the retrofitted model."""

    before: Interval
    after: Interval
    gain: Gain

    def as_dict(self) -> dict[str, Any]:
        return {"before": asdict(self.before), "after": asdict(self.after), "gain": asdict(self.gain)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeldOut:
        return cls(Interval(**data["before"]), Interval(**data["after"]), Gain(**data["gain"]))


# -- what a test loss gives --------------------------------------------------------------------------
@dataclass
class _Evidence:
    """One model's held-out loss, and what it was computed from (per-sample losses, or outputs)."""

    loss: float
    per_sample: np.ndarray | None = None
    outputs: Any = None


def observe(test_loss: Callable[[Any], object], model: Any) -> _Evidence:
    """Evaluate the held-out loss on ``model`` (under no_grad), keeping its parts when it has them."""
    with torch.no_grad():
        if _is_dataset_loss(test_loss):
            outputs = test_loss.outputs(model)  # type: ignore[attr-defined]
            return _Evidence(as_loss(test_loss.score(outputs)), outputs=outputs)  # type: ignore[attr-defined]
        value = test_loss(model)
    array = _per_sample(value)
    if array is not None:
        return _Evidence(float(array.mean()), per_sample=array)
    return _Evidence(as_loss(value))


def _is_dataset_loss(test_loss: Any) -> bool:
    return all(hasattr(test_loss, name) for name in ("outputs", "score", "metric", "targets"))


def _per_sample(value: object) -> np.ndarray | None:
    """A 1-D array of more than one finite per-sample loss, or None."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, (list, tuple, np.ndarray)):
        array = np.asarray(value, dtype=float)
        if array.ndim == 1 and array.size > 1:
            if not np.isfinite(array).all():
                raise ValueError("the held-out loss returned per-sample losses that are not all finite")
            return array
    return None


def compare(test_loss: Any, before: _Evidence, after: _Evidence) -> HeldOut:
    """The held-out losses with their intervals, and the gain with its interval and p-value."""
    if before.per_sample is not None and after.per_sample is not None:
        if before.per_sample.shape != after.per_sample.shape:
            raise ValueError("the held-out loss returned per-sample losses of different lengths")
        return HeldOut(
            loss_interval(before.per_sample),
            loss_interval(after.per_sample),
            per_sample_gain(before.per_sample, after.per_sample),
        )
    if before.outputs is not None and after.outputs is not None:
        metric, targets = test_loss.metric, test_loss.targets
        return metric_comparison(metric, before.outputs, after.outputs, targets)
    return HeldOut(
        Interval(before.loss),
        Interval(after.loss),
        Gain(before.loss - after.loss, method="no per-sample losses"),
    )


# -- per-sample losses ------------------------------------------------------------------------------
def loss_interval(losses: np.ndarray, level: float = LEVEL) -> Interval:
    """The mean loss with Clopper–Pearson's interval (0/1 losses) or a bootstrap's (others)."""
    losses = np.asarray(losses, dtype=float)
    n, mean = losses.size, float(losses.mean())
    alpha = 1 - level
    if np.isin(losses, (0.0, 1.0)).all():
        k = int(losses.sum())
        low = 0.0 if k == 0 else float(stats.beta.ppf(alpha / 2, k, n - k + 1))
        high = 1.0 if k == n else float(stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
        return Interval(mean, low, high, "Clopper-Pearson")
    means = _bootstrap_means(losses, RESAMPLES)
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return Interval(mean, float(low), float(high), "bootstrap")


def per_sample_gain(before: np.ndarray, after: np.ndarray, level: float = LEVEL) -> Gain:
    """The mean paired gain: percentile bootstrap interval, sign-flip permutation p-value."""
    differences = np.asarray(before, dtype=float) - np.asarray(after, dtype=float)
    n, gain = differences.size, float(differences.mean())
    alpha = 1 - level
    low, high = np.quantile(_bootstrap_means(differences, RESAMPLES), [alpha / 2, 1 - alpha / 2])
    return Gain(
        gain, float(low), float(high), "paired bootstrap, sign-flip test", _sign_flip_p(differences), n
    )


def _bootstrap_means(values: np.ndarray, resamples: int, chunk: int = 200) -> np.ndarray:
    rng = np.random.default_rng(SEED)
    n = values.size
    means = []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        means.append(values[rng.integers(0, n, size=(size, n))].mean(axis=1))
    return np.concatenate(means)


def _sign_flip_p(differences: np.ndarray, resamples: int = 4 * RESAMPLES, chunk: int = 500) -> float:
    """Two-sided p-value of "the mean paired difference is 0" by random sign flips (exact in the limit)."""
    observed = abs(differences.mean())
    if observed == 0:
        return 1.0
    rng = np.random.default_rng(SEED)
    extreme, n = 0, differences.size
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        signs = rng.choice((-1.0, 1.0), size=(size, n))
        extreme += int((np.abs((signs * differences).mean(axis=1)) >= observed - 1e-15).sum())
    return (1 + extreme) / (1 + resamples)


# -- corpus metrics ---------------------------------------------------------------------------------
def metric_comparison(
    metric: Callable[[Any, Any], float], before: Any, after: Any, targets: Any, level: float = LEVEL
) -> HeldOut:
    """Paired bootstrap of a metric over resampled items: the same items for both models each time."""
    n = len(targets)
    rng = np.random.default_rng(SEED)
    alpha = 1 - level
    observed = (float(metric(before, targets)), float(metric(after, targets)))
    before_values, after_values = [], []
    for _ in range(RESAMPLES // 2):
        index = rng.integers(0, n, size=n)
        picked = _take(targets, index)
        before_values.append(float(metric(_take(before, index), picked)))
        after_values.append(float(metric(_take(after, index), picked)))
    b, a = np.asarray(before_values), np.asarray(after_values)
    gains = b - a
    quantiles = [alpha / 2, 1 - alpha / 2]
    low, high = np.quantile(gains, quantiles)
    p = min(1.0, 2 * min((gains <= 0).mean(), (gains >= 0).mean()) + 1 / (1 + gains.size))
    return HeldOut(
        Interval(observed[0], *map(float, np.quantile(b, quantiles)), "bootstrap of the metric"),
        Interval(observed[1], *map(float, np.quantile(a, quantiles)), "bootstrap of the metric"),
        Gain(observed[0] - observed[1], float(low), float(high), "paired bootstrap of the metric", p, n),
    )


def _take(values: Any, index: np.ndarray) -> Any:
    """The items ``index`` of a tensor, an array or a sequence (targets of any kind)."""
    if isinstance(values, torch.Tensor):
        return values[torch.as_tensor(index)]
    if isinstance(values, np.ndarray):
        return values[index]
    return [values[i] for i in index]


def fmt_gain(gain: Gain | None) -> str:
    """``0.023 [0.011, 0.035], p = 0.001: holds`` — or the bare gain where there is no interval."""
    if gain is None:
        return "-"
    if gain.low is None:
        return f"{gain.value:.4g} (no interval: the held-out loss is one number)"
    p = (
        ""
        if gain.p_value is None
        else (f", p = {gain.p_value:.2g}" if gain.p_value >= 0.001 else ", p < 0.001")
    )
    return f"{gain.value:.4g} [{gain.low:.4g}, {gain.high:.4g}]{p}: {gain.verdict}"
