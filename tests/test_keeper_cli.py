"""shortfall keeper: --help, user errors as one line with exit 1, secrets redacted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from keeper.cli import main

ROOT = Path(__file__).resolve().parents[1]
PROVIDER = "0x2f39d218133AFaB8F2B819B1066c7E434Ad94E9e"


def test_help_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["keeper", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "shortfall keeper --deployment deployment.json --db keeper.sqlite" in out
    assert "--stress-from" in out and "--margin" in out and "flag rule" in out


def test_missing_rpc_is_a_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ETH_RPC_URL", raising=False)
    assert main(["keeper", "--provider", PROVIDER, "--db", str(tmp_path / "k.sqlite")]) == 1
    assert "no RPC" in capsys.readouterr().err


def test_bad_options_are_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = [
        "keeper",
        "--rpc",
        "http://127.0.0.1:1",
        "--provider",
        PROVIDER,
        "--db",
        str(tmp_path / "k"),
    ]
    assert main([*base, "--stress-from", str(tmp_path / "nope")]) == 1
    assert "no such results directory" in capsys.readouterr().err
    assert main([*base, "--alpha", "1.5"]) == 1
    assert "--alpha" in capsys.readouterr().err
    assert main([*base, "--protocol", "aave-v2"]) == 1
    assert "did you mean" in capsys.readouterr().err
    assert main([*base, "--ws", "https://node.example/v2/WSKEY"]) == 1
    err = capsys.readouterr().err
    assert "--ws https://node.example is not a ws://" in err and "WSKEY" not in err
    with pytest.raises(SystemExit) as exc:
        main([*base, "--margin", "cash"])
    assert exc.value.code == 2


def test_unreachable_rpc_is_redacted(tmp_path: Path) -> None:
    secret_rpc = "http://127.0.0.1:9/v2/SUPERSECRETKEY"
    secret_hook = "https://hooks.example.invalid/services/T0/B0/HOOKSECRET"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ETH_RPC_URL": secret_rpc}
    proc = subprocess.run(
        [
            sys.executable, "-m", "keeper.cli", "-vv", "keeper", "--provider", PROVIDER,
            "--db", str(tmp_path / "k.sqlite"), "--once", "--retries", "0", "--timeout", "2",
            "--metrics-port", "-1", "--webhook", secret_hook,
        ],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    text = proc.stdout + proc.stderr
    assert "SUPERSECRETKEY" not in text and "HOOKSECRET" not in text
    assert "http://127.0.0.1:9" in text


def test_metrics_port_in_use_is_a_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(
            [
                "keeper", "--rpc", "http://127.0.0.1:9", "--provider", PROVIDER,
                "--db", str(tmp_path / "k.sqlite"), "--once", "--metrics-port", str(port),
            ]
        )  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert f"--metrics-port {port}" in err and "Traceback" not in err


def test_a_second_keeper_on_the_same_database_refuses_to_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from keeper.daemon import _lock_database

    db = tmp_path / "k.sqlite"
    argv = [
        "keeper", "--rpc", "http://127.0.0.1:9", "--provider", PROVIDER, "--db", str(db),
        "--once", "--metrics-port", "-1", "--retries", "0", "--timeout", "2",
    ]  # fmt: skip
    held = _lock_database(db)  # the first keeper
    try:
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "another keeper is running" in err and str(db) in err
    finally:
        held.close()
    # Released: the next keeper gets past the lock (and fails on the dead RPC instead).
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "another keeper" not in err and "127.0.0.1:9" in err


def test_settings_repr_redacts_the_urls(tmp_path: Path) -> None:
    from keeper.daemon import KeeperSettings

    settings = KeeperSettings(
        rpc_url="https://eth.example/v2/RPCSECRET",
        provider=PROVIDER,
        db_path=tmp_path / "k.sqlite",
        ws_url="wss://eth.example/ws/WSSECRET",
        webhook_url="https://hooks.example/services/HOOKSECRET",
    )
    for text in (repr(settings), str(settings), f"{settings!r}"):
        assert "SECRET" not in text
        assert "https://eth.example" in text and "wss://eth.example" in text
