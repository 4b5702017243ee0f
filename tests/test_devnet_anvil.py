"""Finding, starting and stopping anvil."""

from __future__ import annotations

import os
import socket
import stat

import pytest

from keeper.devnet import DevnetError
from keeper.devnet import anvil as anvil_mod
from keeper.devnet.anvil import Anvil, find_anvil


def test_env_variable_wins(monkeypatch, tmp_path):
    fake = tmp_path / "anvil"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("SHORTFALL_ANVIL", str(fake))
    assert find_anvil() == str(fake)
    monkeypatch.setenv("SHORTFALL_ANVIL", str(tmp_path / "missing"))
    with pytest.raises(DevnetError, match="SHORTFALL_ANVIL"):
        find_anvil()


def test_missing_anvil_names_make_setup(monkeypatch, tmp_path):
    monkeypatch.delenv("SHORTFALL_ANVIL", raising=False)
    monkeypatch.setattr(anvil_mod, "_PACKAGE_DIR", tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DevnetError, match="make setup"):
        find_anvil()


def test_node_modules_found_upwards_from_cwd(monkeypatch, tmp_path):
    binary = tmp_path / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.delenv("SHORTFALL_ANVIL", raising=False)
    monkeypatch.setattr(anvil_mod, "_PACKAGE_DIR", deep)
    monkeypatch.chdir(deep)
    assert find_anvil() == str(binary)


def test_binary_that_exits_is_reported_with_its_log(tmp_path):
    node = Anvil(binary="/bin/false", log_path=tmp_path / "anvil.log", startup_timeout=5)
    with pytest.raises(DevnetError, match="exited with code 1"):
        node.start()
    assert not node.running


def test_port_in_use_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(DevnetError, match=f"port {port}"):
            Anvil(port=port).start()


@pytest.mark.integration
def test_start_poll_stop(tmp_path):
    node = Anvil(log_path=tmp_path / "anvil.log")
    with node:
        assert node.running and node.port is not None
        assert node.rpc_url == f"http://127.0.0.1:{node.port}"
        pid = node.pid
    assert not node.running
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    node.stop()  # idempotent
