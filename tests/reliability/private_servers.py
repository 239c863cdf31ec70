"""Private Redis and PostgreSQL servers that a fault test may kill and restart.

Each runs on a free port of 127.0.0.1 with its data in a temporary directory, and is killed
with SIGKILL (no shutdown, like a crash or an OOM kill) and started again on the same port,
so a client configured with its URL sees the very outage and recovery production would.
They never touch the machine's shared servers.

    with private_redis() as redis:            # redis.url, redis.kill(), redis.start()
    with private_postgres() as pg:            # pg.url (asyncpg), pg.kill(), pg.start()

`ClientLoad` runs a few client loops against a server meanwhile (bounded in count and time,
only to 127.0.0.1) and records every request's start, duration and status.

When the binaries are missing the test is skipped loudly (failed under CI=true), like every
test whose service is unreachable. As root, PostgreSQL runs as the `postgres` user (it
refuses to run as root), in a directory that user owns.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import free_port, require_service

START_TIMEOUT = 30.0


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"private {what} exited with {proc.returncode} at start")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"private {what} did not start within {START_TIMEOUT} s")


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state, ppid, ...)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _children(pid: int) -> list[int]:
    """The pids whose parent is `pid`."""
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        child = int(Path(stat).parent.name)
        fields = _stat(child)
        if fields is not None and int(fields[1]) == pid:
            found.append(child)
    return found


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


class PrivateRedis:
    """A `redis-server` without persistence on its own port."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Starts it (again) on the same port; returns once it accepts connections."""
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self._workdir)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, self.process, "redis-server")

    def kill(self) -> None:
        """SIGKILL; returns once the process is gone."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(5)
            self.process = None


@contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        require_service("redis-server", "the redis-server binary is not installed")
    with tempfile.TemporaryDirectory(prefix="agent-api-redis-") as workdir:
        redis = PrivateRedis(Path(workdir))
        redis.start()
        try:
            yield redis
        finally:
            redis.kill()


def _postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory (Debian layout), or PATH's."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("postgres")
    return Path(on_path).parent if on_path else None


class PrivatePostgres:
    """A PostgreSQL cluster of its own (trust auth, no fsync) on its own port."""

    def __init__(self, bindir: Path, datadir: Path, user: str | None) -> None:
        self.port = free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"
        self._bindir = bindir
        self._datadir = datadir
        self._user = user
        self.process: subprocess.Popen[bytes] | None = None

    def initdb(self) -> None:
        subprocess.run(
            [
                *(str(self._bindir / "initdb"), "-D", str(self._datadir), "-U", "postgres"),
                *("--auth=trust", "--no-sync", "--encoding=UTF8", "--locale=C"),
            ],
            check=True,
            capture_output=True,
            user=self._user,
        )

    def start(self) -> None:
        """Starts the postmaster (again) on the same port, recovering from a crash if it was
        killed; returns once it accepts connections."""
        self.process = subprocess.Popen(
            [
                *(str(self._bindir / "postgres"), "-D", str(self._datadir), "-p", str(self.port)),
                *("-k", str(self._datadir), "-c", "listen_addresses=127.0.0.1"),
                *("-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=100"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            user=self._user,
        )
        _wait_for_port(self.port, self.process, "postgres")
        self._wait_accepting()

    def _wait_accepting(self) -> None:
        # The port opens before crash recovery ends ("the database system is starting up").
        ready = self._bindir / "pg_isready"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            check = [str(ready), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
            if subprocess.run(check, capture_output=True).returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError("private postgres did not accept connections in time")

    def kill(self) -> None:
        """SIGKILL to the postmaster and every backend at once (a crash of the whole server);
        returns once they are gone."""
        if self.process is None:
            return
        victims = [self.process.pid, *_children(self.process.pid)]
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(5)
        self.process = None
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in victims[1:]):
            if time.monotonic() > deadline:
                raise RuntimeError("postgres backends survived SIGKILL")
            time.sleep(0.02)


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    bindir = _postgres_bin()
    if bindir is None or not (bindir / "initdb").exists():
        require_service("postgres binaries", "initdb/postgres are not installed")
        raise AssertionError("unreachable")  # require_service skips or fails
    user = None
    workdir = Path(tempfile.mkdtemp(prefix="agent-api-pg-"))
    try:
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            user = "postgres"
            owner = pwd.getpwnam(user)
            os.chown(workdir, owner.pw_uid, owner.pw_gid)
        pg = PrivatePostgres(bindir, workdir / "data", user)
        pg.initdb()
        pg.start()
        try:
            yield pg
        finally:
            pg.kill()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --- client load -------------------------------------------------------------------------------

Request = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


@dataclass(frozen=True, slots=True)
class Sample:
    """One request of a load loop: when it started (time.monotonic), how long it took, and
    its status (None when the connection failed: `error` says how)."""

    name: str
    started: float
    elapsed: float
    status: int | None
    retry_after: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class ClientLoad:
    """`loops` concurrent client loops per named request, each sending its request again
    and again (with `pause` s between two) until `stop()`, at most `max_per_loop` times.

        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            load = ClientLoad(client, {"me": lambda c: c.get("/v1/auth/me", headers=h)})
            load.start()
            ...                      # break something
            samples = await load.stop()
    The client's own timeout should be far above the bound a test asserts, so that a hang
    shows up as a long `elapsed` rather than as a client-side error."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        requests: dict[str, Request],
        *,
        loops: int = 2,
        pause: float = 0.02,
        max_per_loop: int = 2000,
    ) -> None:
        self._client = client
        self._requests = requests
        self._loops = loops
        self._pause = pause
        self._max = max_per_loop
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.samples: list[Sample] = []

    def start(self) -> None:
        for name, request in self._requests.items():
            for _ in range(self._loops):
                self._tasks.append(asyncio.create_task(self._loop(name, request)))

    async def stop(self) -> list[Sample]:
        """Lets every loop finish its request in flight; returns all samples by start."""
        self._stopping.set()
        await asyncio.gather(*self._tasks)
        return sorted(self.samples, key=lambda s: s.started)

    async def _loop(self, name: str, request: Request) -> None:
        for _ in range(self._max):
            if self._stopping.is_set():
                return
            started = time.monotonic()
            try:
                response = await request(self._client)
            except httpx.HTTPError as exc:
                sample = Sample(name, started, time.monotonic() - started, None, error=repr(exc))
            else:
                sample = Sample(
                    name,
                    started,
                    time.monotonic() - started,
                    response.status_code,
                    response.headers.get("retry-after"),
                )
            self.samples.append(sample)
            await asyncio.sleep(self._pause)
