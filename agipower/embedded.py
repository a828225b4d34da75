"""The embedded defaults: what runs when no external server is configured.

With no DATABASE_URL the platform keeps a private PostgreSQL under ``var/`` (the
``pgserver`` package ships the binaries). The server outlives the process that
started it, so the web server, the Celery worker and beat all share one.
"""

from __future__ import annotations

import secrets
from pathlib import Path


def embedded_database_url(var_dir: Path) -> str:
    import pgserver

    var_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(var_dir / "pgdata", cleanup_mode=None)
    return server.get_uri()


def persistent_secret(path: Path) -> str:
    """A random secret generated once and kept in a file readable only by us."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(50)
    path.touch(mode=0o600)
    path.write_text(value)
    return value
