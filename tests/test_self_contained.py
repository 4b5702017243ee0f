"""The repository tests on its own: a clone with nothing beside it passes ``make test``."""

from __future__ import annotations

import re

import pytest
from price_data import PRICES, REPO, price_file


def test_a_file_beside_the_checkout_cannot_be_opened() -> None:
    """The audit hook in conftest refuses reads of ``<checkout>/../X``, existing or not."""
    with pytest.raises(PermissionError, match="beside the checkout"):
        open(REPO.parent / "data" / "prices" / "ETH-USD.csv")  # noqa: SIM115
    with pytest.raises(PermissionError, match="beside the checkout"):
        open(REPO / ".." / "anything.txt")  # noqa: SIM115


def test_files_inside_the_checkout_still_open() -> None:
    with open(price_file("ETH-USD.csv")) as fh:
        assert fh.readline().strip() == "date,open,high,low,close,volume"


def test_price_data_ship_with_their_provenance() -> None:
    provenance = (PRICES / "PROVENANCE.md").read_text()
    for csv in sorted(PRICES.glob("*.csv")):
        assert csv.name in provenance, f"{csv.name} is not described in PROVENANCE.md"


def test_no_test_or_module_names_a_sibling_directory() -> None:
    # the sibling's name is assembled, so this guard does not itself name it
    sibling = "sha" + "red"
    pattern = re.compile(rf"\.\./{sibling}|parents\[2\]|\b{sibling}/(data|reference)\b")
    offenders = [
        f"{path.relative_to(REPO)}:{n}"
        for folder in ("tests", "simulator", "keeper", "benchmarks", "scenarios")
        for ext in ("*.py", "*.toml")
        for path in sorted((REPO / folder).rglob(ext))
        if path.name != "test_self_contained.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, f"code refers outside the repository: {offenders}"
