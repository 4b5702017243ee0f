"""Foundation: package layout rules, atomic writes, URL redaction, CLI exit codes."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from keeper.redact import redact_text, redact_url
from simulator.atomic import atomic_directory, atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_SIMULATOR = {"web3", "eth_abi", "asyncio", "aiohttp", "keeper", "asyncio_throttle"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "simulator").rglob("*.py")), ids=str)
def test_simulator_never_imports_chain_io(path: Path) -> None:
    bad = _imports(path) & FORBIDDEN_IN_SIMULATOR
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}; simulator/ must stay pure"


def test_atomic_directory_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "snap"
    with pytest.raises(RuntimeError), atomic_directory(target) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_directory_replaces_existing(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_directory(target) as tmp:
        atomic_write_json(tmp / "new.json", {"a": 1})
    assert sorted(p.name for p in target.iterdir()) == ["new.json"]
    assert json.loads((target / "new.json").read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_directory_refuses_overwrite_when_asked(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with (
        pytest.raises(FileExistsError, match="already exists"),
        atomic_directory(tmp_path / "out", overwrite=False),
    ):
        pass


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://eth-mainnet.g.alchemy.com/v2/SECRETKEY", "https://eth-mainnet.g.alchemy.com"),
        ("https://user:pass@rpc.example.org:8443/x?key=abc", "https://rpc.example.org:8443"),
        ("wss://mainnet.infura.io/ws/v3/abcdef", "wss://mainnet.infura.io"),
        ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
        ("https://hooks.slack.com/services/T0/B0/XYZ", "https://hooks.slack.com"),
        ("not a url", "<redacted url>"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_text_removes_every_secret() -> None:
    text = "POST https://hooks.slack.com/services/T0/B0/XYZ failed; rpc wss://x.io/v3/KEY down"
    out = redact_text(text)
    assert "XYZ" not in out and "KEY" not in out
    assert "https://hooks.slack.com" in out and "wss://x.io" in out


def _shortfall(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keeper.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_cli_help_and_version() -> None:
    out = _shortfall("--help")
    assert out.returncode == 0, out.stderr
    assert "examples:" in out.stdout
    out = _shortfall("--version")
    assert out.returncode == 0 and out.stdout.startswith("shortfall ")


def test_cli_usage_error_exits_2() -> None:
    out = _shortfall("no-such-command")
    assert out.returncode == 2
    assert "invalid choice" in out.stderr


def test_atomic_writes_get_ordinary_permissions(tmp_path: Path) -> None:
    import os

    mask = os.umask(0o022)
    try:
        with atomic_directory(tmp_path / "d") as tmp:
            atomic_write_json(tmp / "f.json", {})
    finally:
        os.umask(mask)
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "d" / "f.json").stat().st_mode & 0o777 == 0o644


# -- layout and the two commands (issue 2) -----------------------------------------------------


def test_layout_and_packaging_as_specified() -> None:
    import tomllib

    for name in ("simulator", "keeper", "contracts_abi", "scenarios", "tests", "benchmarks"):
        assert (ROOT / name).is_dir(), name
    files = (
        "pyproject.toml",
        "README.md",
        "Makefile",
        ".ci/run",
        "package.json",
        "package-lock.json",
    )
    for name in files:
        assert (ROOT / name).is_file(), name
    pins = json.loads((ROOT / "package.json").read_text())["dependencies"]
    assert all(v[0].isdigit() for v in pins.values()), pins  # exact versions, no ranges
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    assert project["scripts"] == {"shortfall": "keeper.cli:main"}
    assert "test" in project["optional-dependencies"]
    from simulator import risk

    assert callable(risk.es) and callable(risk.var)


def test_readme_shows_the_two_commands_first() -> None:
    text = (ROOT / "README.md").read_text()
    first_block = text.split("```")[1]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands[:2] == ["make demo", "make test"], commands


@pytest.mark.parametrize(("test_exit", "expected"), [(0, 0), (1, 2)])
def test_ci_runs_lint_and_tests_and_fails_when_a_test_fails(
    tmp_path: Path, test_exit: int, expected: int
) -> None:
    """.ci/run with a stand-in Makefile: a failing `make test` makes CI fail (make exits 2),
    and lint runs first."""
    (tmp_path / ".ci").mkdir()
    (tmp_path / ".ci" / "run").write_bytes((ROOT / ".ci" / "run").read_bytes())
    (tmp_path / "Makefile").write_text(
        "lint:\n\t@echo lint-ran\n"
        f"test:\n\t@echo test-ran; {sys.executable} -c 'raise SystemExit({test_exit})'\n"
    )
    # run as CI does, not as a sub-make of `make test` (which would print "Entering directory")
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    out = subprocess.run(
        ["bash", str(tmp_path / ".ci" / "run")],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert out.returncode == expected, out.stderr
    assert out.stdout.split() == ["lint-ran", "test-ran"]
