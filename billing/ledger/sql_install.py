"""The SQL that apps keep in ``<app>/sql/*.sql`` (functions, triggers, table
storage settings), and how it reaches every database.

Migrations are history: a migration that read these files when it ran installed
whatever they said on that day, and a database migrated before a later change
kept the old functions while new code called them. So the files are not run by
migrations. Each is written to be run again (``CREATE OR REPLACE``,
``DROP ... IF EXISTS``) and is installed after every ``migrate`` (the
``post_migrate`` signal, sent once per app when all apps are migrated, also
while the test database is made) whenever the database differs from it:

- the file's sha256 differs from the one recorded in ``sql_installed`` when it
  was last installed (a changed trigger or storage setting, a new function);
- a function it defines is missing or has another body, or has an overload the
  file does not define (an older signature), or a function it defined when it
  was last installed is still there though the file dropped it;
- a trigger it creates is missing or disabled.

Installing runs the file, drops those leftovers, records the sha256 and checks
again, in one transaction: a migrate that cannot make the database match the
code fails. ``CREATE OR REPLACE TRIGGER`` on a journal table takes a SHARE ROW
EXCLUSIVE lock on it until that transaction ends, so on a live database the
install waits at most ``SQL_INSTALL_LOCK_TIMEOUT`` seconds for it (every settle
would queue behind a waiting install), then tries again a few times after a
short pause, and fails the migrate with a clear message if it never gets it.

``sql_drift()`` is the same comparison, read only: a test, the nightly
reconciliation and ``manage.py check --database default`` run it.
"""

from __future__ import annotations

import hashlib
import re
import sys
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.apps import AppConfig, apps
from django.conf import settings
from django.core import checks
from django.db import OperationalError, connections, transaction

FUNCTION = re.compile(
    r"^CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+(\w+)\s*\(.*?\bAS\s+(\$\w*\$)(.*?)\2",
    re.S | re.M | re.I,
)
TRIGGER = re.compile(
    r"^CREATE\s+(?:OR\s+REPLACE\s+)?TRIGGER\s+(\w+)\s.*?\bON\s+(\w+)",
    re.S | re.M | re.I,
)
# One install at a time per database (two servers starting together).
LOCK = "SELECT pg_advisory_xact_lock(hashtext('sql_installed'))"
# The longest one attempt waits for a table's lock (lock_timeout, seconds), how
# many attempts, and the pause before the first retry (doubled each time);
# settings of the same names override them.
LOCK_TIMEOUT_SECONDS = 5.0
LOCK_ATTEMPTS = 4
LOCK_BACKOFF_SECONDS = 0.25
LOCK_NOT_AVAILABLE = "55P03"
# Kept here as Django keeps django_migrations: not a model, so that the tests'
# flush between tests leaves it (and the files are not installed again).
TABLE = """
    CREATE TABLE IF NOT EXISTS sql_installed (
        path text PRIMARY KEY,
        sha256 text NOT NULL,
        functions text[] NOT NULL,
        installed_at timestamptz NOT NULL DEFAULT now()
    )
"""


@dataclass(frozen=True)
class SqlFile:
    path: str  # relative to the project, e.g. "billing/sql/ledger_v1.sql"
    text: str
    sha256: str
    functions: dict[str, frozenset[str]]  # name -> the bodies of its definitions
    triggers: tuple[tuple[str, str], ...]  # (trigger, table)

    @classmethod
    def read(cls, path: Path) -> SqlFile:
        text = path.read_text()
        functions: dict[str, set[str]] = {}
        for match in FUNCTION.finditer(text):
            functions.setdefault(match.group(1).lower(), set()).add(match.group(3))
        return cls(
            path=path.relative_to(settings.BASE_DIR).as_posix(),
            text=text,
            sha256=hashlib.sha256(text.encode()).hexdigest(),
            functions={name: frozenset(bodies) for name, bodies in functions.items()},
            triggers=tuple(
                (m.group(1).lower(), m.group(2).lower()) for m in TRIGGER.finditer(text)
            ),
        )


def _is_project_app(app_config: AppConfig) -> bool:
    return Path(app_config.path).parent == Path(settings.BASE_DIR)


@cache
def _app_files(app_label: str) -> tuple[SqlFile, ...]:
    folder = Path(apps.get_app_config(app_label).path) / "sql"
    return tuple(SqlFile.read(path) for path in sorted(folder.glob("*.sql")))


def sql_files(app_config: AppConfig | None = None) -> list[SqlFile]:
    """The SQL files of one app, or of every app of the project in the order of
    INSTALLED_APPS (which is also the order they are installed in)."""
    configs = [app_config] if app_config else apps.get_app_configs()
    return [
        sql_file
        for config in configs
        if _is_project_app(config)
        for sql_file in _app_files(config.label)
    ]


def _defined_bodies() -> dict[str, frozenset[str]]:
    """Every definition of every function, over all files: a name defined in
    two files keeps both."""
    bodies: dict[str, frozenset[str]] = {}
    for sql_file in sql_files():
        for name, found in sql_file.functions.items():
            bodies[name] = bodies.get(name, frozenset()) | found
    return bodies


def _overloads(cursor, names) -> dict[str, list[tuple[str, str]]]:
    """name -> [(its signature, its body)] of the functions in the schema the
    files are installed in."""
    cursor.execute(
        "SELECT p.proname, p.oid::regprocedure::text, p.prosrc FROM pg_proc p"
        " WHERE p.pronamespace = current_schema()::regnamespace"
        " AND p.proname = ANY(%s) ORDER BY p.oid",
        [list(names)],
    )
    found: dict[str, list[tuple[str, str]]] = {}
    for name, signature, body in cursor.fetchall():
        found.setdefault(name, []).append((signature, body))
    return found


def _recorded(cursor, path: str) -> tuple[str, list[str]] | None:
    cursor.execute("SELECT to_regclass('sql_installed') IS NOT NULL")
    if not cursor.fetchone()[0]:
        return None
    cursor.execute(
        "SELECT sha256, functions FROM sql_installed WHERE path = %s", [path]
    )
    return cursor.fetchone()


def _leftovers(cursor, sql_file: SqlFile, recorded) -> list[str]:
    """Signatures of functions the file does not define (any more): overloads
    of its functions with a body no file has, and functions it once defined."""
    defined = _defined_bodies()
    dropped = set(recorded[1] if recorded else ()) - set(defined)
    found = _overloads(cursor, set(sql_file.functions) | dropped)
    return [
        signature
        for name, overloads in found.items()
        for signature, body in overloads
        if name in dropped or body not in defined[name]
    ]


def _file_drift(cursor, sql_file: SqlFile) -> list[str]:
    problems = []
    recorded = _recorded(cursor, sql_file.path)
    if recorded is None:
        problems.append("never installed")
    elif recorded[0] != sql_file.sha256:
        problems.append(
            f"installed from another version (sha256 {recorded[0][:12]}, "
            f"the code's is {sql_file.sha256[:12]})"
        )
    found = _overloads(cursor, sql_file.functions)
    differ = set()
    for name, bodies in sql_file.functions.items():
        overloads = found.get(name, [])
        current = [body for _, body in overloads if body in bodies]
        if not overloads:
            problems.append(f"function {name} is missing")
        elif not current:
            differ.add(name)
            problems.append(f"function {name} differs from the code")
        elif len(current) > len(bodies):
            # One body under two signatures: the older one cannot be told apart.
            problems.append(
                f"function {name} has {len(current)} definitions in the "
                f"database, {len(bodies)} in the code"
            )
    for signature in _leftovers(cursor, sql_file, recorded):
        if signature.split("(")[0] not in differ:
            problems.append(f"function {signature} is not in the code")
    for trigger, table in sql_file.triggers:
        cursor.execute(
            "SELECT tgenabled FROM pg_trigger"
            " WHERE tgname = %s AND tgrelid = to_regclass(%s)",
            [trigger, table],
        )
        row = cursor.fetchone()
        if row is None:
            problems.append(f"trigger {trigger} on {table} is missing")
        elif row[0] not in ("O", "A"):  # disabled, or firing on replicas only
            problems.append(f"trigger {trigger} on {table} is disabled")
    return [f"{sql_file.path}: {problem}" for problem in problems]


def sql_drift(*, using: str = "default") -> list[str]:
    """Where the database differs from the SQL files of the code (nothing when
    they match), one line per difference."""
    with connections[using].cursor() as cursor:
        return [
            problem
            for sql_file in sql_files()
            for problem in _file_drift(cursor, sql_file)
        ]


class SqlInstallLockTimeout(RuntimeError):
    """The tables a file alters stayed locked by other transactions."""


def _lock_not_available(error: OperationalError) -> bool:
    return getattr(error.__cause__, "sqlstate", None) == LOCK_NOT_AVAILABLE


def sql_install(
    *, app_config: AppConfig | None = None, using: str = "default", force: bool = False
) -> list[str]:
    """Install the files (of one app, or all) that differ from the database, or
    every one with force; answers the paths installed."""
    timeout = float(getattr(settings, "SQL_INSTALL_LOCK_TIMEOUT", LOCK_TIMEOUT_SECONDS))
    attempts = max(
        1, int(getattr(settings, "SQL_INSTALL_LOCK_ATTEMPTS", LOCK_ATTEMPTS))
    )
    backoff = float(getattr(settings, "SQL_INSTALL_LOCK_BACKOFF", LOCK_BACKOFF_SECONDS))
    installed = []
    for sql_file in sql_files(app_config):
        for attempt in range(attempts):
            try:
                if _install_file(sql_file, using=using, force=force, timeout=timeout):
                    installed.append(sql_file.path)
                break
            except OperationalError as error:
                if not _lock_not_available(error):
                    raise
                if attempt + 1 == attempts:
                    tables = sorted({table for _, table in sql_file.triggers})
                    raise SqlInstallLockTimeout(
                        f"could not install {sql_file.path}: other transactions "
                        f"held a lock on {', '.join(tables) or 'its tables'} "
                        f"for more than {timeout:g} s (lock_timeout) on each of "
                        f"{attempts} attempts. Installing it locks those tables "
                        "against writes until it is done, so it does not wait "
                        "longer behind a long transaction; end that transaction "
                        "(pg_stat_activity shows it) and run migrate again."
                    ) from error
                time.sleep(backoff * 2**attempt)
    return installed


def _install_file(
    sql_file: SqlFile, *, using: str, force: bool, timeout: float
) -> bool:
    """One attempt, in one transaction: whether the file was installed."""
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        # Two installs at once wait for each other as long as it takes: only
        # the tables' locks, taken after this, wait at most the timeout.
        cursor.execute(LOCK)
        # SET LOCAL lock_timeout, as set_config takes a parameter.
        cursor.execute("SHOW lock_timeout")
        [previous] = cursor.fetchone()
        cursor.execute(
            "SELECT set_config('lock_timeout', %s, true)",
            [f"{max(1, round(timeout * 1000))}ms"],
        )
        cursor.execute(TABLE)
        if not force and not _file_drift(cursor, sql_file):
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])
            return False
        recorded = _recorded(cursor, sql_file.path)
        cursor.execute(sql_file.text)
        for signature in _leftovers(cursor, sql_file, recorded):
            cursor.execute(f"DROP FUNCTION {signature}")
        cursor.execute(
            "INSERT INTO sql_installed (path, sha256, functions)"
            " VALUES (%s, %s, %s) ON CONFLICT (path) DO UPDATE"
            " SET sha256 = excluded.sha256, functions = excluded.functions,"
            " installed_at = now()",
            [sql_file.path, sql_file.sha256, sorted(sql_file.functions)],
        )
        if problems := _file_drift(cursor, sql_file):
            raise RuntimeError(
                "the database still differs from the code after installing "
                f"{sql_file.path}: {'; '.join(problems)}"
            )
        # SET LOCAL in a savepoint outlives it: the enclosing transaction
        # (a test's) keeps its own timeout.
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])
    return True


def sql_install_after_migrate(sender: AppConfig, using: str, **kwargs) -> None:
    """post_migrate: install the SQL of the app just migrated. An app whose
    tables are not all there (migrated backwards) is left alone."""
    if not sql_files(sender):
        return
    connection = connections[using]
    tables = set(connection.introspection.table_names())
    if any(model._meta.db_table not in tables for model in sender.get_models()):
        return
    for path in sql_install(app_config=sender, using=using):
        if kwargs.get("verbosity", 1) >= 1:
            stdout = kwargs.get("stdout") or sys.stdout
            stdout.write(f"  Installed {path}\n")


def sql_check(app_configs=None, databases=None, **kwargs) -> list[checks.CheckMessage]:
    """``manage.py check --database default``: a warning (not an error, which
    would stop the very ``migrate`` that mends it) per file that differs."""
    messages = []
    for using in databases or ():
        by_file: dict[str, list[str]] = {}
        for problem in sql_drift(using=using):
            path, _, what = problem.partition(": ")
            by_file.setdefault(path, []).append(what)
        for path, problems in by_file.items():
            messages.append(
                checks.Warning(
                    f"database {using!r} differs from {path}: {'; '.join(problems)}",
                    hint="manage.py migrate installs the SQL of every app",
                    id="billing.W001",
                )
            )
    return messages
