"""Run the fake upstream (``tests.upstream.server``) as a real subprocess.

    with UpstreamProcess(completion_tokens=8, api_key="sk-up") as upstream:
        client = OpenAI(base_url=upstream.base_url, api_key="sk-up")
        ...
        upstream.requests()   # the last 100 /v1 requests: method, path, headers, body
        upstream.stats()      # counters, see server.STATS_KEYS
        upstream.clear()      # forget the recorded requests

Keyword options are the server's CLI options (``latency_ms=50`` becomes
``--latency-ms 50``). The server binds port 0 and reports the port it got, so
parallel test processes never race for a port.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 10.0
_READY = "upstream listening on "


class UpstreamProcess:
    def __init__(self, host: str = "127.0.0.1", **options: Any) -> None:
        self.host = host
        self.options = options
        self.proc: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self._stderr: Any = None

    # -- life cycle ---------------------------------------------------------------

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "tests.upstream.server"]
        cmd += ["--host", self.host, "--port", "0"]
        for name, value in self.options.items():
            if value is None:
                continue
            cmd += [f"--{name.replace('_', '-')}", str(value)]
        return cmd

    def start(self) -> UpstreamProcess:
        if self.proc is not None:
            raise RuntimeError("upstream already started")
        # Lives as long as the process; closed in stop().
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(  # noqa: S603 - our own module, fixed argv
            self.command(),
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,  # its own process group, killed as a whole
        )
        try:
            self.port = self._read_port(time.monotonic() + START_TIMEOUT)
            self._wait_answering(time.monotonic() + START_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        return self

    def _read_port(self, deadline: float) -> int:
        assert self.proc is not None and self.proc.stdout is not None
        line = b""
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0:
                    self._fail("did not report its port in time")
                if not selector.select(left):
                    continue
                byte = os.read(self.proc.stdout.fileno(), 1)
                if not byte:
                    self._fail("exited before listening")
                line += byte
        text = line.decode().strip()
        if not text.startswith(_READY):
            self._fail(f"unexpected first line {text!r}")
        return int(text.rsplit(":", 1)[1])

    def _wait_answering(self, deadline: float) -> None:
        while True:
            try:
                self.stats()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self._fail("does not answer")
                if self.proc is not None and self.proc.poll() is not None:
                    self._fail("exited")
                time.sleep(0.02)

    def _fail(self, why: str) -> None:
        raise RuntimeError(f"upstream server {why}; stderr:\n{self.stderr()}")

    def stderr(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                self._signal(proc, signal.SIGTERM)
                try:
                    proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    self._signal(proc, signal.SIGKILL)
                    proc.wait(timeout=3)
            if proc.stdout is not None:
                proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signum)  # start_new_session: pgid == pid

    def __enter__(self) -> UpstreamProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses ----------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://HOST:PORT``, the root (introspection lives at /_requests)."""
        if self.port is None:
            raise RuntimeError("upstream not started")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1``: what an OpenAI client or provider record wants."""
        return f"{self.url}/v1"

    # -- introspection ------------------------------------------------------------

    def _call(self, method: str, path: str) -> Any:
        request = urllib.request.Request(self.url + path, method=method)  # noqa: S310
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return json.loads(response.read())

    def requests(self) -> list[dict[str, Any]]:
        """The last 100 /v1 requests, oldest first: method, path, headers, body."""
        return self._call("GET", "/_requests")

    def clear(self) -> None:
        """Forget the recorded requests (the counters stay)."""
        self._call("DELETE", "/_requests")

    def stats(self) -> dict[str, int]:
        return self._call("GET", "/_stats")

    def reset_stats(self) -> None:
        self._call("DELETE", "/_stats")

    def wait_for_stat(
        self, name: str, at_least: int, timeout: float = 2.0
    ) -> dict[str, int]:
        """Poll /_stats until ``stats[name] >= at_least``; the last stats either way."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if stats[name] >= at_least or time.monotonic() > deadline:
                return stats
            time.sleep(0.02)
