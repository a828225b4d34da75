"""The embedded defaults: what runs when no external server is configured.

With no DATABASE_URL the platform keeps a private PostgreSQL under ``var/`` (the
``pgserver`` package ships the binaries). The server outlives the process that
started it, so the web server, the Celery worker and beat all share one; ``serve``
stops it when it stops itself (unless another process still uses it), and
``python -m agipower.embedded stop`` (``scripts/run stop``) stops one that was
left running. As root, pgserver runs PostgreSQL as the user ``pgserver``
(PostgreSQL refuses root), so ``pg_ctl`` run by hand as root fails.
"""

from __future__ import annotations

import os
import secrets
import sys
import warnings
from pathlib import Path

# The data folder of the embedded server this process uses, if it uses one.
_in_use: Path | None = None


def embedded_database_url(var_dir: Path) -> str:
    global _in_use
    import pgserver

    var_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(var_dir / "pgdata", cleanup_mode=None)
    _in_use = server.pgdata
    return server.get_uri()


def embedded_database_in_use() -> Path | None:
    """The data folder of the embedded PostgreSQL this process uses, or None
    when DATABASE_URL names a server."""
    return _in_use


def embedded_database_stop(var_dir: Path, *, unless_used: bool = True) -> bool:
    """Stop the embedded PostgreSQL whose data is under var_dir, if it runs;
    with unless_used, only when no other live process holds it (every process
    that opens it is listed in its data folder until it exits). Answers whether
    it was stopped."""
    from pgserver import _commands
    from pgserver.postgres_server import PostgresServer
    from pgserver.utils import DiskList, PostmasterInfo, process_is_running

    pgdata = (var_dir / "pgdata").resolve()
    with PostgresServer._lock:
        info = PostmasterInfo.read_from_pgdata(pgdata)
        if info is None or not info.is_running():
            return False
        if unless_used:
            holders = DiskList(pgdata / ".handle_pids.json").get()
            if any(pid != os.getpid() and process_is_running(pid) for pid in holders):
                return False
        # As its owner: as root that is pgserver's own user (see above).
        owner = pgdata.stat().st_uid
        _commands.pg_ctl(
            ["-w", "-m", "fast", "stop"],
            pgdata=pgdata,
            user=owner if owner != os.geteuid() else None,
            timeout=60,
        )
    return True


def persistent_secret(path: Path) -> str:
    """A random secret generated once and kept in a file readable only by us."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(50)
    path.touch(mode=0o600)
    path.write_text(value)
    return value


def main(argv: list[str]) -> int:
    """``python -m agipower.embedded stop [VAR_DIR]``: stop the embedded
    PostgreSQL (of ``AGIPOWER_VAR_DIR``, else ``var/``), whoever uses it. It
    needs no Django, so it does not start the server it is asked to stop."""
    if not argv or argv[0] != "stop" or len(argv) > 2:
        print("usage: python -m agipower.embedded stop [VAR_DIR]", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    default = os.environ.get("AGIPOWER_VAR_DIR") or Path(__file__).parent.parent / "var"
    var_dir = Path(argv[1] if len(argv) > 1 else default)
    if embedded_database_stop(var_dir, unless_used=False):
        print(f"stopped the embedded PostgreSQL of {var_dir}")
    else:
        print(f"the embedded PostgreSQL of {var_dir} is not running")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
