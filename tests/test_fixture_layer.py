"""The tests share one fixture layer: helpers are imported from tests/support,
fixtures come from conftest.py files through pytest, and no file under tests/
imports a conftest.py or a test module (that would tie one folder's tests to
another's, and load the module twice, under two names)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def imported_names(source: str, module: str) -> list[tuple[int, str]]:
    """(line, dotted name) of every module, and every name from a module, that
    ``source`` (the text of ``module``, e.g. "tests.billing.test_holds")
    imports, wherever in the file; relative imports made absolute."""
    package = module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def forbidden(name: str) -> bool:
    """A conftest module or a test module of ours."""
    parts = name.split(".")
    return parts[0] == "tests" and any(
        part == "conftest" or part.startswith("test_") for part in parts[1:]
    )


def test_no_file_under_tests_imports_a_conftest_or_a_test_module():
    offences = []
    for path in sorted(TESTS.rglob("*.py")):
        relative = path.relative_to(TESTS.parent)
        module = ".".join(relative.with_suffix("").parts)
        lines = {}  # the first offending name of each import statement
        for line, name in imported_names(path.read_text(encoding="utf-8"), module):
            if forbidden(name):
                lines.setdefault(line, name)
        offences += [
            f"{relative}:{line} imports {name}" for line, name in lines.items()
        ]
    assert offences == [], "import helpers from tests/support:\n" + "\n".join(offences)


def test_the_check_sees_every_way_of_importing_one():
    module = "tests.billing.test_example"
    for source in (
        "from tests.billing.conftest import grant",
        "from tests.payments.test_topups import with_profile",
        "import tests.conftest",
        "from tests.billing import conftest",
        "from tests import conftest",
        "from .conftest import grant",
        "from . import test_holds",
        "from ..payments.test_topups import with_profile",
        "def helper():\n    from tests.conftest import PASSWORD",
    ):
        names = [name for _, name in imported_names(source, module)]
        assert any(forbidden(name) for name in names), source
    for source in (
        "from tests.support.world import grant",
        "from tests.upstream.process import UpstreamProcess",
        "from billing.ledger.grants import credit_grant",
        "import pytest",
    ):
        names = [name for _, name in imported_names(source, module)]
        assert not any(forbidden(name) for name in names), source
