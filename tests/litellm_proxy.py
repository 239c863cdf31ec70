"""A real LiteLLM proxy in a subprocess, for integration tests and benchmarks.

This is the production topology's middle hop: agent-api -> LiteLLM -> an OpenAI-compatible
upstream (here usually the stub LLM):

    with StubLLM() as stub, LiteLLMProxy(stub.base_url) as proxy:
        ...  # LLM_BASE_URL=proxy.url, LLM_API_KEY=proxy.master_key

The proxy is the `litellm` command of the `litellm[proxy]` package installed next to the
running interpreter, started offline and quietly:
- its config (one `openai/<name>` deployment per model, all pointing at the upstream, and the
  master key) is written to a private temporary directory, which is also its working directory;
- its environment is built from scratch, so nothing of ours leaks into it (no DATABASE_URL, so
  no database and no prisma; no provider keys); `LITELLM_MODE=PRODUCTION` stops it from
  loading a `.env` file found above its installation; the model cost map is the bundled one
  (no download at startup); the admin UI and the feedback banner are off; it logs warnings
  and errors only (no access log), to a file rather than a pipe nobody reads;
- it runs in its own process group, and `stop()` ends the whole group (its workers too).

`start()` raises `LiteLLMUnavailable` when the `litellm` command is not installed, and
`RuntimeError` with the tail of the proxy's log when it exits or does not answer in time.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

# Answers 200 once uvicorn serves requests, which is after the proxy's startup (config loaded).
READINESS_PATH = "/health/liveliness"
# Printed by each worker at the end of its startup: with several workers, `start()` waits for
# all of them, so that the first requests are not all served by the first worker up.
WORKER_READY_MARKER = "Proxy initialized with Config"
LOG_TAIL_CHARS = 4000


class LiteLLMUnavailable(RuntimeError):
    """The `litellm` command (the `litellm[proxy]` package) is not installed."""


def litellm_executable() -> Path:
    """The `litellm` command of the environment running this interpreter."""
    return Path(sys.executable).parent / "litellm"


class LiteLLMProxy:
    """A real LiteLLM proxy (`litellm` CLI from the litellm[proxy] package) in a subprocess on a
    free 127.0.0.1 port, routing the given model names to an OpenAI-compatible upstream (e.g.
    the stub LLM).

    `upstream_base_url` is the upstream's OpenAI base URL as the SDK takes it, `/v1` included
    (`stub.base_url`): LiteLLM posts to `<upstream_base_url>/chat/completions`. Clients
    authenticate to the proxy with `Authorization: Bearer <master_key>` (it must start with
    "sk-"); the proxy sends the upstream the key "unused". `num_workers` > 1 runs that many
    uvicorn workers, and `start()` then waits for every one of them.

    `url` ("http://127.0.0.1:<port>", what LLM_BASE_URL points at) is set by `start()`;
    `startup_seconds` is how long the start took, from spawning to ready.
    """

    def __init__(
        self,
        upstream_base_url: str,
        models: Sequence[str] = ("gpt-4o-mini", "gpt-4o"),
        master_key: str = "sk-test-master",
        num_workers: int = 1,
    ) -> None:
        if not master_key.startswith("sk-"):
            raise ValueError("LiteLLM requires a master key starting with 'sk-'")
        self.upstream_base_url = upstream_base_url.rstrip("/")
        self.models = tuple(models)
        self.master_key = master_key
        self.num_workers = num_workers
        self.port = 0
        self.url = ""
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self, timeout: float = 120.0) -> LiteLLMProxy:
        """Starts the proxy and returns once it serves the configured models."""
        executable = litellm_executable()
        if not executable.exists():
            raise LiteLLMUnavailable(f"{executable} not found (install litellm[proxy])")
        if self._proc is not None:
            raise RuntimeError("the LiteLLM proxy is already running")
        self._dir = Path(tempfile.mkdtemp(prefix="litellm-proxy-"))
        config = self._dir / "config.yaml"
        # JSON is YAML: no YAML writer needed.
        config.write_text(json.dumps(self._config(), indent=2))
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            str(executable),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--num_workers",
            str(self.num_workers),
        ]
        began = time.monotonic()
        with (self._dir / "litellm.log").open("wb") as log:
            self._proc = subprocess.Popen(
                command,
                cwd=self._dir,
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, ended as a whole by stop()
            )
        atexit.register(self.stop)
        try:
            self._wait_ready(began + timeout)
        except Exception as exc:
            tail = self.log_tail() or "(nothing yet)"
            self.stop()
            raise RuntimeError(
                f"the LiteLLM proxy did not start ({exc}); its log ends with:\n{tail}"
            ) from exc
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        """Ends the proxy's whole process group (SIGTERM, SIGKILL after 10 s) and removes its
        directory. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            atexit.unregister(self.stop)
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(5)
            # Workers that outlived their parent are in the same group.
            _signal_group(proc, signal.SIGKILL)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> LiteLLMProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        """The proxy's main process (its workers' parent and process group leader), or None
        when it is not running: for pinning it to a CPU or measuring its memory."""
        return self._proc.pid if self._proc is not None else None

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        """The end of the proxy's output so far ("" once stopped)."""
        if self._dir is None:
            return ""
        try:
            return (self._dir / "litellm.log").read_bytes()[-chars:].decode(errors="replace")
        except OSError:
            return ""

    # --- internals -----------------------------------------------------------------------------
    def _config(self) -> dict[str, object]:
        return {
            "model_list": [
                {
                    "model_name": name,
                    "litellm_params": {
                        "model": f"openai/{name}",
                        "api_base": self.upstream_base_url,
                        "api_key": "unused",
                    },
                }
                for name in self.models
            ],
            # As in deployments/litellm_config.yaml: agent-api does its own retries.
            "litellm_settings": {"drop_params": True, "num_retries": 0, "request_timeout": 600},
            # Clients connect directly (an empty list also silences a startup warning).
            "general_settings": {"master_key": self.master_key, "trusted_proxy_ranges": []},
        }

    def _environment(self) -> dict[str, str]:
        env = {
            name: os.environ[name]
            for name in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
            if name in os.environ
        }
        env.update(
            {
                "LITELLM_MODE": "PRODUCTION",  # no .env loading
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no download at startup
                "LITELLM_LOG": "WARNING",  # also uvicorn's level: no access log
                "LITELLM_DONT_SHOW_FEEDBACK_BOX": "true",
                "DISABLE_ADMIN_UI": "True",
                "DISABLE_SCHEMA_UPDATE": "True",  # no prisma, even if a database appeared
                "NO_PROXY": "127.0.0.1,localhost",
                "PYTHONUNBUFFERED": "1",  # a complete log tail when it fails
            }
        )
        return env

    def _wait_ready(self, deadline: float) -> None:
        """Polls the readiness route, then checks that the proxy lists our models."""
        assert self._proc is not None
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"litellm exited with {self._proc.returncode}")
            try:
                if (
                    httpx.get(self.url + READINESS_PATH, timeout=2, trust_env=False).status_code
                    == 200
                ):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("litellm did not answer in time")
            time.sleep(0.1)
        response = httpx.get(
            self.url + "/v1/models",
            headers={"Authorization": f"Bearer {self.master_key}"},
            timeout=10,
            trust_env=False,  # no HTTP proxy from the environment for 127.0.0.1
        )
        served = {model.get("id") for model in response.json().get("data", ())}
        if response.status_code != 200 or not set(self.models) <= served:
            raise RuntimeError(f"litellm serves {sorted(map(str, served))}, not {self.models}")
        while self.log_tail(chars=1 << 20).count(WORKER_READY_MARKER) < self.num_workers:
            if self._proc.poll() is not None:
                raise RuntimeError(f"litellm exited with {self._proc.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"not all {self.num_workers} litellm workers started in time")
            time.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(proc.pid, signum)
