"""The processes a benchmark run starts: each pinned to its CPU core with `taskset`, waited
for until its port answers, and stopped (SIGTERM, then SIGKILL) when the run ends."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pinned(core: int, argv: list[str]) -> list[str]:
    """`argv` run on one core (all its threads inherit the affinity). No taskset: unpinned."""
    if shutil.which("taskset") is None:
        return argv
    return ["taskset", "-c", str(core), *argv]


def rss_mb(pid: int) -> float:
    """Resident set size of a process, in MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def pin_tree(pid: int, core: int) -> None:
    """Pins a running process, its threads and its children (and theirs) to `core`."""
    if shutil.which("taskset") is None:
        return
    pending = [pid]
    while pending:
        current = pending.pop()
        subprocess.run(
            ["taskset", "-a", "-c", "-p", str(core), str(current)],
            check=False,
            capture_output=True,
        )
        children = Path(f"/proc/{current}/task/{current}/children")
        if children.exists():
            pending += [int(c) for c in children.read_text().split()]


class Service:
    """A started process and the URL it answers on."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
        self.proc, self.url, self.log_path = proc, url, log_path

    @property
    def pid(self) -> int:
        return self.proc.pid


@contextlib.contextmanager
def service(
    name: str,
    argv: list[str],
    *,
    port: int,
    core: int,
    env: dict[str, str] | None = None,
    ready_path: str = "/health",
    timeout: float = 60.0,
) -> Iterator[Service]:
    """Starts `argv` pinned to `core`; yields once `GET ready_path` answers (any status)."""
    base_env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(ROOT),
    }
    log_dir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    log_path = log_dir / "output.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            pinned(core, argv),
            env={**base_env, **(env or {})},
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(name, proc, url + ready_path, log_path, timeout)
        yield Service(proc, url, log_path)
    finally:
        stop(proc)
        shutil.rmtree(log_dir, ignore_errors=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _wait_ready(
    name: str, proc: subprocess.Popen[bytes], url: str, log_path: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            output = log_path.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{output}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not answer on {url} within {timeout:.0f} s")
        time.sleep(0.1)


def python(*args: str) -> list[str]:
    return [sys.executable, *args]
