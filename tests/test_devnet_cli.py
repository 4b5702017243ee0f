"""``shortfall devnet`` and ``shortfall devnet set-price`` as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from keeper.cli import main
from keeper.devnet import DevnetError
from keeper.devnet.anvil import free_port
from keeper.devnet.chain import Contract, Rpc

pytestmark = pytest.mark.integration


def test_help_has_examples(capsys):
    for argv in (["devnet", "--help"], ["devnet", "set-price", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert "examples:" in out and "shortfall devnet set-price --deployment" in out


def test_set_price_errors_are_one_line(tmp_path, capsys):
    missing = tmp_path / "nope.json"
    assert main(["devnet", "set-price", "--deployment", str(missing), "WETH", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("shortfall: error:") and "nope.json" in err and "\n" not in err


def test_devnet_runs_until_sigterm(tmp_path, devnet):
    out = tmp_path / "deployment.json"
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "keeper.cli",
            "devnet",
            "--accounts",
            "60",
            "--seed",
            "3",
            "--port",
            str(port),
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 90
        while not out.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "devnet did not write its deployment in time"
            time.sleep(0.1)
        dep = json.loads(out.read_text())
        assert dep["rpc_url"] == f"http://127.0.0.1:{port}"
        assert dep["accounts"] == 60 and dep["seed"] == 3
        # same addresses as any other deployment of the same build (deterministic deployer)
        assert dep["pool"] == devnet.deployment["pool"]

        set_price = subprocess.run(
            [
                sys.executable,
                "-m",
                "keeper.cli",
                "devnet",
                "set-price",
                "--deployment",
                str(out),
                "WBTC",
                "41000",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert set_price.returncode == 0, set_price.stderr
        assert "WBTC price set to 41000 USD in block" in set_price.stdout
        rpc = Rpc(dep["rpc_url"])
        oracle = Contract(rpc, dep["oracle"], "AaveOracle")
        assert oracle.call("getAssetPrice", dep["reserves"]["WBTC"]["token"]) == 41000 * 10**8
        rpc.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "devnet up at" in stdout
    with pytest.raises(DevnetError, match="cannot reach"):
        Rpc(f"http://127.0.0.1:{port}", timeout=2).chain_id()


def test_compound_v3_devnet_and_set_price(tmp_path):
    """``shortfall devnet --protocol compound-v3`` deploys a Comet market; ``set-price`` moves
    one of its feeds (Comet's ``getPrice`` reads it)."""
    out = tmp_path / "comet.json"
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "keeper.cli", "devnet", "--protocol", "compound-v3"),
            *("--accounts", "40", "--seed", "5", "--port", str(port), "--out", str(out)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 90
        while not out.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "devnet did not write its deployment in time"
            time.sleep(0.1)
        dep = json.loads(out.read_text())
        assert dep["protocol"] == "compound-v3" and dep["accounts"] == 40
        assert main(["devnet", "set-price", "--deployment", str(out), "WETH", "1234.5"]) == 0
        rpc = Rpc(dep["rpc_url"])
        comet = Contract(rpc, dep["comet"], "Comet")
        assert comet.call("getPrice", dep["reserves"]["WETH"]["feed"]) == 123_450_000_000
        rpc.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "compound-v3 devnet up at" in stdout and "near liquidation" in stdout
