"""The committed devnet artifacts are what the pinned solc makes of the committed sources.

``make contracts`` (``python -m keeper.devnet.build``) must rebuild byte-identical artifacts:
these tests compile ``keeper/devnet/contracts/*.sol`` with the npm ``solc`` pinned in
package.json (in memory; nothing is written) and compare every contract's ABI, creation and
runtime bytecode with ``keeper/devnet/artifacts`` and ``contracts_abi/devnet``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from keeper.devnet.build import (
    ABI_DIR,
    ARTIFACTS_DIR,
    CONTRACTS,
    SOLC_VERSION,
    SOURCES_DIR,
    compile_sources,
    find_node_modules,
)

ROOT = Path(__file__).resolve().parent.parent


def test_solc_is_pinned_in_one_version_everywhere() -> None:
    package = json.loads((ROOT / "package.json").read_text())
    assert package["dependencies"]["solc"] == SOLC_VERSION  # exact pin, no range
    installed = find_node_modules("solc")
    assert installed is not None, "npm package solc not installed: run `make setup`"
    assert json.loads((installed / "package.json").read_text())["version"] == SOLC_VERSION
    for source in sorted(SOURCES_DIR.glob("*.sol")):
        pragma = re.search(r"pragma solidity ([^;]+);", source.read_text())
        assert pragma is not None and pragma.group(1) == SOLC_VERSION, source.name
    for name in CONTRACTS:
        artifact = json.loads((ARTIFACTS_DIR / f"{name}.json").read_text())
        assert artifact["compiler"].startswith(f"solc {SOLC_VERSION}+commit."), name


@pytest.fixture(scope="module")
def compiled() -> dict[str, Any]:
    version, output = compile_sources()
    assert version.startswith(SOLC_VERSION)
    found: dict[str, Any] = {}
    for contracts in output["contracts"].values():
        found.update(contracts)
    return {"version": version, "contracts": found}


@pytest.mark.slow
@pytest.mark.parametrize("name", CONTRACTS)
def test_committed_artifact_is_what_the_pinned_solc_builds(
    compiled: dict[str, Any], name: str
) -> None:
    fresh = compiled["contracts"][name]
    artifact = json.loads((ARTIFACTS_DIR / f"{name}.json").read_text())
    assert artifact["compiler"] == f"solc {compiled['version']}"
    assert artifact["abi"] == fresh["abi"], f"{name}: ABI differs; run `make contracts`"
    assert artifact["bytecode"] == "0x" + fresh["evm"]["bytecode"]["object"], (
        f"{name}: creation bytecode differs from the sources; run `make contracts`"
    )
    assert artifact["deployedBytecode"] == "0x" + fresh["evm"]["deployedBytecode"]["object"], (
        f"{name}: runtime bytecode differs from the sources; run `make contracts`"
    )
    assert json.loads((ABI_DIR / f"{name}.json").read_text()) == fresh["abi"]
    # Everything fits the EIP-170 contract size limit, so a default anvil runs it.
    assert len(fresh["evm"]["deployedBytecode"]["object"]) // 2 <= 24_576


def test_every_deployable_source_contract_has_an_artifact() -> None:
    declared = set()
    for source in SOURCES_DIR.glob("*.sol"):
        declared |= set(re.findall(r"^contract (\w+)", source.read_text(), re.MULTILINE))
    assert declared == set(CONTRACTS)
    assert {p.stem for p in ARTIFACTS_DIR.glob("*.json")} == set(CONTRACTS)
    assert {p.stem for p in ABI_DIR.glob("*.json")} == set(CONTRACTS)
