"""Start and stop a local anvil node.

The binary is found, in order, from the ``SHORTFALL_ANVIL`` environment variable, the project's
``node_modules`` (npm package ``@foundry-rs/anvil``; searched upwards from this package and from
the current directory), then ``anvil`` on ``PATH``. The node listens on 127.0.0.1 only, on the
given port or a free one, with a large block gas limit so that bulk seeding fits in few blocks.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Self

from keeper.devnet import DevnetError

__all__ = ["DEFAULT_BLOCK_GAS_LIMIT", "Anvil", "find_anvil", "free_port"]

log = logging.getLogger(__name__)

_PACKAGE_DIR = Path(__file__).resolve().parent
_NPM_BINARIES = (
    "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil",
    "node_modules/@foundry-rs/anvil-linux-arm64/bin/anvil",
    "node_modules/@foundry-rs/anvil-darwin-arm64/bin/anvil",
    "node_modules/@foundry-rs/anvil-darwin-amd64/bin/anvil",
    "node_modules/.bin/anvil",
)

#: Block gas limit of the devnet: large, so thousands of seeded accounts fit in one block.
DEFAULT_BLOCK_GAS_LIMIT = 30_000_000_000
#: anvil's default chain id.
CHAIN_ID = 31337


def find_anvil() -> str:
    """Path of the anvil binary to run; raises DevnetError naming ``make setup`` if none."""
    env = os.environ.get("SHORTFALL_ANVIL")
    if env:
        if not (os.path.isfile(env) and os.access(env, os.X_OK)):
            raise DevnetError(f"SHORTFALL_ANVIL={env} is not an executable file")
        return env
    for start in (_PACKAGE_DIR, Path.cwd().resolve()):
        for directory in (start, *start.parents):
            for rel in _NPM_BINARIES:
                candidate = directory / rel
                if candidate.is_file() and os.access(candidate, os.X_OK):
                    return str(candidate)
    on_path = shutil.which("anvil")
    if on_path:
        return on_path
    raise DevnetError(
        "anvil not found: run `make setup` (installs the npm package @foundry-rs/anvil), "
        "install Foundry so `anvil` is on PATH, or set SHORTFALL_ANVIL to the binary"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class Anvil:
    """One anvil process on 127.0.0.1.

    Use as a context manager or call :meth:`start` / :meth:`stop`. ``port=None`` picks a free
    port. The node's output goes to ``log_path`` (a temporary file unless given), which error
    messages quote when the node fails to start.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        block_gas_limit: int = DEFAULT_BLOCK_GAS_LIMIT,
        chain_id: int = CHAIN_ID,
        accounts: int = 10,
        log_path: str | os.PathLike[str] | None = None,
        startup_timeout: float = 30.0,
        binary: str | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.port = port
        self.block_gas_limit = block_gas_limit
        self.chain_id = chain_id
        self.accounts = accounts
        self.startup_timeout = startup_timeout
        self.binary = binary
        self.extra_args = extra_args
        self._log_path = Path(log_path) if log_path else None
        self._own_log = False
        self._log_file: IO[bytes] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def rpc_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        if self.port is None:
            raise DevnetError("anvil has not been started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path | None:
        """The file holding the node's stdout and stderr."""
        return self._log_path

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def command(self) -> list[str]:
        """The command line that starts the node."""
        return [
            self.binary or find_anvil(),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            "--accounts",
            str(self.accounts),
            "--gas-limit",
            str(self.block_gas_limit),
            "--no-request-size-limit",
            "--base-fee",
            "0",
            "--gas-price",
            "0",
            *self.extra_args,
        ]

    def start(self) -> Self:
        """Start the node and wait until it answers ``eth_chainId``."""
        if self.running:
            return self
        if self.port is None:
            self.port = free_port()
        elif _port_in_use(self.port):
            raise DevnetError(
                f"port {self.port} on 127.0.0.1 is in use: stop what listens there or pass another --port"
            )
        cmd = self.command()
        if self._log_path is None:
            fd, name = tempfile.mkstemp(prefix=f"anvil-{self.port}-", suffix=".log")
            os.close(fd)
            self._log_path = Path(name)
            self._own_log = True
        self._log_file = open(self._log_path, "wb")  # noqa: SIM115 (closed in stop())
        log.info("starting %s", " ".join(cmd))
        try:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            self._close_log()
            raise DevnetError(f"cannot run {cmd[0]}: {exc}") from exc
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        log.info("anvil ready at %s (pid %d, log %s)", self.rpc_url, self._proc.pid, self._log_path)
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        body = json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        ).encode()
        delay = 0.02
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise DevnetError(
                    f"anvil exited with code {self._proc.returncode} while starting: {self._tail()}"
                )
            req = urllib.request.Request(
                self.rpc_url, data=body, headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(req, timeout=2) as resp:
                    answer = json.loads(resp.read())
                if int(answer["result"], 16) == self.chain_id:
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError, KeyError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise DevnetError(
                    f"anvil did not answer on {self.rpc_url} within {self.startup_timeout:.0f} s: "
                    f"{self._tail()}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    def _tail(self, n: int = 800) -> str:
        if self._log_path is None or not self._log_path.exists():
            return "(no log)"
        if self._log_file is not None:
            with contextlib.suppress(OSError):
                self._log_file.flush()
        text = self._log_path.read_bytes()[-n:].decode("utf-8", "replace").strip()
        return text or f"(empty log {self._log_path})"

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; idempotent.

        A temporary log file this object created is removed after a clean stop.
        """
        proc, self._proc = self._proc, None
        clean = True
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("anvil (pid %d) ignored SIGTERM; killing it", proc.pid)
                clean = False
                proc.kill()
                proc.wait(timeout=timeout)
        self._close_log()
        if clean and self._own_log and self._log_path is not None:
            with contextlib.suppress(OSError):
                self._log_path.unlink()
            self._own_log = False

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:  # last resort: never leave a node behind
        with contextlib.suppress(Exception):
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait(timeout=2)
