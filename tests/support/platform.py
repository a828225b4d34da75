"""Run the platform (uvicorn serving agipower.asgi) as a real subprocess against
the test database, with the command production runs (serve's web_command)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

from agipower.management.commands.serve import web_command

REPO_ROOT = Path(__file__).resolve().parents[2]


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for the database Django is connected to (the test one)."""
    user = quote(settings_dict.get("USER") or "postgres")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password)}@" if password else f"{user}@"
    host = settings_dict.get("HOST") or settings_dict.get("OPTIONS", {}).get("host", "")
    name = settings_dict["NAME"]
    if host.startswith("/"):
        return f"postgresql://{auth}/{name}?host={quote(host)}"
    port = settings_dict.get("PORT") or 5432
    return f"postgresql://{auth}{host}:{port}/{name}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PlatformProcess:
    def __init__(self, *, database_url: str, workers: int = 1, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.url}/v1"
        self.database_url = database_url
        self.workers = workers
        self.extra_env = env or {}
        self.proc: subprocess.Popen | None = None
        # Kept open while the process runs; read back by output().
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            prefix="platform-", suffix=".log", delete=False
        )

    def start(self) -> PlatformProcess:
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "PROXY_KEY_CACHE_SECONDS": "1",
            "PROXY_CATALOG_CACHE_SECONDS": "0.2",
            "PROXY_DB_POOL_MIN": "1",
            **self.extra_env,
        }
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
            web_command(
                host="127.0.0.1",
                port=self.port,
                workers=self.workers,
                graceful_seconds=2,
            ),
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"platform exited:\n{self.output()}")
            try:
                urllib.request.urlopen(f"{self.url}/v1/models", timeout=1)  # noqa: S310
            except urllib.error.HTTPError:
                return self  # it answers (401 without a key)
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"platform did not start:\n{self.output()}")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-5000:]

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> PlatformProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
