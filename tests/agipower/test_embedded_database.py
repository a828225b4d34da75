"""The embedded PostgreSQL (no DATABASE_URL) stops when the platform stops,
unless another process still uses it, and one left running can be stopped by
hand, as root too (agipower/embedded.py, serve)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pgserver.utils import PostmasterInfo

from agipower.embedded import embedded_database_stop

REPO_ROOT = Path(__file__).resolve().parents[2]

# Opens the embedded server as the platform's settings do, then stays a while.
OPEN = """
import sys, time
from pathlib import Path
from agipower.embedded import embedded_database_url
print(embedded_database_url(Path(sys.argv[1])), flush=True)
time.sleep(float(sys.argv[2]))
"""
# What serve does once its web server, worker and beat have stopped.
SERVE_STOPS = """
import django
django.setup()
from agipower.management.commands.serve import Command
Command().stop_embedded_database()
"""


def python(*args: str, var_dir: Path, **options) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        AGIPOWER_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="agipower.settings"
    )
    options = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, **options}
    return subprocess.Popen(  # noqa: S603 - fixed argv
        [sys.executable, *args], cwd=REPO_ROOT, env=env, text=True, **options
    )


def run(*args: str, var_dir: Path) -> str:
    process = python(*args, var_dir=var_dir)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    return output


def opened(var_dir: Path, *, stay_seconds: float) -> subprocess.Popen:
    """A process that has the embedded server running when this returns."""
    process = python(
        "-c",
        OPEN,
        str(var_dir),
        str(stay_seconds),
        var_dir=var_dir,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout.readline().startswith("postgresql://")
    return process


def running(var_dir: Path) -> bool:
    info = PostmasterInfo.read_from_pgdata(var_dir / "pgdata")
    return info is not None and info.is_running()


@pytest.fixture(scope="module")
def var_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("var")
    yield path
    embedded_database_stop(path, unless_used=False)


def test_a_server_left_running_is_stopped_by_serve(var_dir):
    # Started, and left running by a process that is gone (as a killed
    # `scripts/run` would leave it).
    opened(var_dir, stay_seconds=0).wait(30)
    assert running(var_dir)

    output = run("-c", SERVE_STOPS, var_dir=var_dir)

    assert "Stopped the embedded PostgreSQL" in output
    assert not running(var_dir)


def test_serve_leaves_it_to_another_process_that_uses_it(var_dir):
    other = opened(var_dir, stay_seconds=60)
    try:
        output = run("-c", SERVE_STOPS, var_dir=var_dir)

        assert "still used by another process" in output
        assert running(var_dir)

        # By hand (`scripts/run stop`), it stops whoever uses it.
        output = run("-m", "agipower.embedded", "stop", str(var_dir), var_dir=var_dir)
        assert "stopped the embedded PostgreSQL" in output
        assert not running(var_dir)
    finally:
        other.kill()
        other.wait(10)

    output = run("-m", "agipower.embedded", "stop", str(var_dir), var_dir=var_dir)
    assert "is not running" in output
