"""Exceptions of the numerical core.

One root, ``ShortfallError``; every subclass is also a builtin exception so that callers
may catch either (``except ValueError`` still works for bad input).
"""


class ShortfallError(Exception):
    """Root of every error Shortfall raises on purpose."""


class InputError(ShortfallError, ValueError):
    """Bad numerical input: empty, NaN or inf, negative weights, alpha outside (0, 1)..."""


class SnapshotError(ShortfallError, ValueError):
    """A snapshot directory is missing, incomplete or fails validation."""


class ScenarioError(ShortfallError, ValueError):
    """A scenario file is malformed, or cannot produce paths for the requested assets."""


class ResultsError(ShortfallError, ValueError):
    """A results directory is missing, incomplete or fails validation."""


class ExecutorError(ShortfallError, RuntimeError):
    """A chunk of a simulation failed on the executor (a Dask worker, a process pool)."""


class NumericalWarning(UserWarning):
    """Numerical trouble worth a user's attention (a poor fit, a round limit hit...)."""
