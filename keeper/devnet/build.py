"""Compile the devnet contracts with the pinned solcjs (npm ``solc``) into committed artifacts.

``python -m keeper.devnet.build`` (``make contracts``) compiles ``contracts/*.sol`` with
standard JSON (optimizer on, via-IR) and writes, for every deployable contract,
``keeper/devnet/artifacts/<Contract>.json`` (``abi``, ``bytecode``, ``deployedBytecode``,
compiler version) and ``contracts_abi/devnet/<Contract>.json`` (the ABI alone). Only
developers need Node and solc; the artifacts ship with the package.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

from keeper.devnet import DevnetError
from simulator.atomic import atomic_write_json

__all__ = ["CONTRACTS", "build", "find_node_modules"]

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
SOURCES_DIR = PACKAGE_DIR / "contracts"
ARTIFACTS_DIR = PACKAGE_DIR / "artifacts"
ABI_DIR = PACKAGE_DIR.parent.parent / "contracts_abi" / "devnet"

#: Contracts that get an artifact (the rest of the sources are interfaces).
CONTRACTS: tuple[str, ...] = (
    "Pool",
    "PoolAddressesProvider",
    "Comet",
    "AaveOracle",
    "AaveProtocolDataProvider",
    "DevnetERC20",
    "DevnetPriceFeed",
    "DevnetScaledToken",
    "Multicall3",
    "UniswapV2Pair",
    "UniswapV3Pool",
)

SOLC_VERSION = "0.8.30"

_COMPILE_JS = r"""
const solc = require(process.argv[1]);
let input = '';
process.stdin.on('data', (c) => { input += c; });
process.stdin.on('end', () => {
  process.stdout.write(JSON.stringify({version: solc.version(), output: JSON.parse(solc.compile(input))}));
});
"""


def find_node_modules(package: str, starts: list[Path] | None = None) -> Path | None:
    """The first ``node_modules/<package>`` found searching upwards from each start directory."""
    for start in starts or [PACKAGE_DIR, Path.cwd()]:
        for directory in [start, *start.parents]:
            candidate = directory / "node_modules" / package
            if candidate.exists():
                return candidate
    return None


def _standard_json() -> dict:
    sources = {p.name: {"content": p.read_text()} for p in sorted(SOURCES_DIR.glob("*.sol"))}
    return {
        "language": "Solidity",
        "sources": sources,
        "settings": {
            "optimizer": {"enabled": True, "runs": 200},
            "viaIR": True,
            "evmVersion": "cancun",
            "outputSelection": {
                "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}
            },
        },
    }


def compile_sources() -> tuple[str, dict]:
    """Run solcjs on every source; returns (compiler version, standard-JSON output)."""
    node = shutil.which("node")
    if node is None:
        raise DevnetError(
            "node is not on PATH; run `make setup` (Node is needed only to rebuild contracts)"
        )
    solc = find_node_modules("solc")
    if solc is None:
        raise DevnetError("npm package solc not found in node_modules; run `make setup`")
    proc = subprocess.run(
        [node, "-e", _COMPILE_JS, str(solc)],
        input=json.dumps(_standard_json()),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise DevnetError(f"solcjs failed: {proc.stderr.strip()[-2000:]}")
    result = json.loads(proc.stdout)
    errors = [e for e in result["output"].get("errors", []) if e["severity"] == "error"]
    if errors:
        raise DevnetError(
            "compilation failed:\n" + "\n".join(e["formattedMessage"] for e in errors)
        )
    for warning in result["output"].get("errors", []):
        log.warning("solc: %s", warning["formattedMessage"].strip())
    return result["version"], result["output"]


def build() -> list[str]:
    """Compile and write the artifacts; returns the names of the contracts written."""
    version, output = compile_sources()
    if not version.startswith(SOLC_VERSION):
        raise DevnetError(f"solc {version} found, {SOLC_VERSION} pinned; run `make setup`")
    found: dict[str, dict] = {}
    for contracts in output["contracts"].values():
        found.update(contracts)
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    ABI_DIR.mkdir(parents=True, exist_ok=True)
    for name in CONTRACTS:
        c = found[name]
        artifact = {
            "contractName": name,
            "compiler": f"solc {version}",
            "abi": c["abi"],
            "bytecode": "0x" + c["evm"]["bytecode"]["object"],
            "deployedBytecode": "0x" + c["evm"]["deployedBytecode"]["object"],
        }
        atomic_write_json(ARTIFACTS_DIR / f"{name}.json", artifact)
        atomic_write_json(ABI_DIR / f"{name}.json", c["abi"])
        log.info("%s: %d bytes deployed", name, len(c["evm"]["deployedBytecode"]["object"]) // 2)
    return list(CONTRACTS)


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(
        prog="python -m keeper.devnet.build",
        description="Rebuild the devnet contract artifacts with the pinned solcjs.",
    ).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        names = build()
    except DevnetError as exc:
        print(f"build: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {len(names)} artifacts to {ARTIFACTS_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
