"""Where the tests find the real price histories: ``data/prices`` in this repository.

The CSVs were copied byte for byte from the project's shared data set; where each one comes
from, its licence situation and how it was checked are in ``data/prices/PROVENANCE.md``.
The package never reads them at run time (the calibrated numbers are shipped in
``scenarios/``); the tests, the calibration scripts and ``shortfall backtest`` runs on the
shipped history do.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PRICES", "REPO", "price_file"]

REPO = Path(__file__).resolve().parents[1]
"""The checkout's root: nothing a test reads may lie outside it (see ``conftest.py``)."""

PRICES = REPO / "data" / "prices"
"""Directory of the price CSVs (``ETH-USD.csv``, ..., ``PROVENANCE.md``)."""


def price_file(name: str) -> Path:
    """Path of one shipped price file, e.g. ``price_file("ETH-USD.csv")``.

    Raises:
        FileNotFoundError: the file is not in ``data/prices``.
    """
    path = PRICES / name
    if not path.is_file():
        available = ", ".join(sorted(p.name for p in PRICES.glob("*.csv"))) or "none"
        raise FileNotFoundError(f"{path}: no such price file in the repository (have: {available})")
    return path
