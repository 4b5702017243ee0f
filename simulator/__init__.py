"""Shortfall's numerical core: state model, scenarios, cascade engine, risk measures.

Pure numerics: given arrays and parameters it returns results. Nothing here talks to
a chain, uses asyncio or configures logging; ``keeper`` does that and imports us.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("shortfall")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
