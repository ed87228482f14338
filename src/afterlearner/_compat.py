"""Compatibility shims for the libraries afterlearner stands on, applied once, on import.

Nevergrad 1.0.12 and numpy >= 2.4
---------------------------------
Nevergrad's MetaModel (which the ``NGOpt`` wizard picks for many small continuous problems)
minimises a scikit-learn surrogate with ``float(model.predict(x[None, :]))``. ``predict`` returns a
one-element 1-d array, and numpy 2.4 turned ``float()`` of such an array from a deprecation warning
into ``TypeError: only 0-dimensional arrays can be converted to Python scalars``. The error is raised
inside a worker thread of Nevergrad's Powell recaster, which then waits forever: ``NGOpt`` hangs.

The call site resolves the name ``float`` through the module's globals before the builtins, so we
give ``nevergrad.optimization.metamodel`` a module-level ``float`` that accepts one-element arrays and
is the builtin otherwise. Nothing else in Nevergrad or numpy changes. The shim is applied only to the
Nevergrad version it was written against and only where numpy needs it; the test
``test_ngopt_runs_its_metamodel_with_the_installed_numpy`` runs ``NGOpt`` into its MetaModel to check it.
"""

from __future__ import annotations

import builtins

import numpy as np

PATCHED_NEVERGRAD = "1.0.12"


def _scalar_float(value: object = 0.0) -> float:
    """``float()`` that also takes a one-element array, as numpy < 2.4 did."""
    if isinstance(value, np.ndarray) and value.size == 1:
        return builtins.float(value.reshape(()))
    return builtins.float(value)  # type: ignore[arg-type]


def _numpy_needs_shim() -> bool:
    major, minor = (int(part) for part in np.__version__.split(".")[:2])
    return (major, minor) >= (2, 4)


def patch_nevergrad() -> bool:
    """Install the shim if this Nevergrad/numpy pair needs it. Returns whether it was installed."""
    import nevergrad
    from nevergrad.optimization import metamodel

    if nevergrad.__version__ != PATCHED_NEVERGRAD or not _numpy_needs_shim():
        return False
    metamodel.float = _scalar_float  # type: ignore[attr-defined]
    return True


NEVERGRAD_PATCHED = patch_nevergrad()
