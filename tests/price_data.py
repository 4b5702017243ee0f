"""Where the tests find the real price histories (``../shared/data/prices``, PROVENANCE.md).

The package never reads them (the calibrated numbers are shipped in ``scenarios/``); only
tests that check those numbers against the market do. They live next to the checkout
(``<checkout>/../shared/data/prices``); a clone elsewhere points
``SHORTFALL_PRICE_DATA`` at the directory. A missing directory is an error with that advice,
not a skip: the checks must run.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PRICES", "price_file"]

PRICES = Path(
    os.environ.get(
        "SHORTFALL_PRICE_DATA",
        Path(__file__).resolve().parents[2] / "shared" / "data" / "prices",
    )
)
"""Directory of the shared price CSVs (``ETH-USD.csv``, ..., ``PROVENANCE.md``)."""


def price_file(name: str) -> Path:
    """Path of one shared price file, e.g. ``price_file("ETH-USD.csv")``.

    Raises:
        FileNotFoundError: the file is not there, with how to point the tests at the data.
    """
    path = PRICES / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: real price data not found; the tests expect ../shared/data/prices next "
            "to the checkout, or set SHORTFALL_PRICE_DATA to that directory"
        )
    return path
