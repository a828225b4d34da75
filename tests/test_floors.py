"""The floor plan (DESIGN.md, "Floors"): an app depends only on the apps below
it — in Python imports, model foreign keys and table names in SQL alike — and
no module of an app imports, however indirectly, itself."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Top to bottom. The money helpers are the floor under all of them.
FLOORS = [
    "agipower",
    "alerts",
    "insurance",
    "proxy",
    "apikeys",
    "gifts",
    "referrals",
    "billing",
    "invoices",
    "accounts",
    "money",
]
RANK = {app: len(FLOORS) - i for i, app in enumerate(FLOORS)}
TABLE = re.compile(r"\b(" + "|".join(FLOORS[1:-1]) + r")_[a-z][a-z_]*\b")
SQL_WORD = re.compile(r"\b(SELECT|UPDATE|INSERT INTO|DELETE FROM|JOIN|FROM)\b")
MODEL_REFERENCE = re.compile(
    r"""(?:ForeignKey|OneToOneField|ManyToManyField)\(\s*["'](\w+)\.""", re.S
)


def sources(app: str):
    for path in sorted((ROOT / app).rglob("*")):
        if path.suffix in (".py", ".sql") and "migrations" not in path.parts:
            yield path


def _runtime_nodes(tree: ast.AST):
    """Every node but those under ``if TYPE_CHECKING:`` (annotations only)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in ast.walk(child))
            continue
        yield node
        yield from _runtime_nodes(node)


def sql_texts(path: Path):
    """The SQL of a file: all of a .sql file; a module's string constants that
    read as SQL."""
    text = path.read_text()
    if path.suffix == ".sql":
        yield 1, text
        return
    for node in ast.walk(ast.parse(text, str(path))):
        is_text = isinstance(node, ast.Constant) and isinstance(node.value, str)
        if is_text and SQL_WORD.search(node.value):
            yield node.lineno, node.value


def imported_modules(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def violations(app: str):
    for path in sources(app):
        where = path.relative_to(ROOT)
        text = path.read_text()
        used = set()
        if path.suffix == ".py":
            used |= {
                (line, name.split(".")[0]) for line, name in imported_modules(path)
            }
            for match in MODEL_REFERENCE.finditer(text):
                used.add((text.count("\n", 0, match.start()) + 1, match.group(1)))
        for line, sql in sql_texts(path):
            for match in TABLE.finditer(sql):
                used.add((line + sql.count("\n", 0, match.start()), match.group(1)))
        for line, other in sorted(used):
            if other in RANK and other != app and RANK[other] > RANK[app]:
                yield f"{where}:{line} uses {other}, a floor above {app}"


@pytest.mark.parametrize("app", FLOORS)
def test_an_app_uses_only_the_floors_below_it(app):
    assert list(violations(app)) == []


def module_graph(app: str) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sources(app):
        if path.suffix != ".py":
            continue
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        graph[module] = {
            name
            for _, name in imported_modules(path)
            if name.split(".")[0] == app and name != module
        }
    # "from billing import ledger" names a module; "from billing.x import f"
    # names a function of billing.x: keep only the names that are modules.
    return {
        module: {name if name in graph else name.rpartition(".")[0] for name in names}
        & set(graph)
        for module, names in graph.items()
    }


def cycle_in(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


@pytest.mark.parametrize("app", FLOORS)
def test_no_cycle_between_the_modules_of_an_app(app):
    assert cycle_in(module_graph(app)) is None


def test_the_check_sees_a_violation(tmp_path):
    # The checks above can fail: a cycle is found, and an import upward is.
    assert cycle_in({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert RANK["proxy"] > RANK["billing"]
    assert TABLE.search("UPDATE apikeys_apikey SET").group(1) == "apikeys"
    upward = "from proxy.models import RequestLog\n"
    assert ast.unparse(next(_runtime_nodes(ast.parse(upward)))) == upward.strip()
    guarded = "if TYPE_CHECKING:\n    from proxy.catalog import Model\n"
    assert list(_runtime_nodes(ast.parse(guarded))) == []


def test_the_ledger_never_imports_payments():
    # Inside billing, payments stand on the ledger: they credit and claw back
    # through its services, never the other way round.
    upward = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted((ROOT / "billing" / "ledger").rglob("*.py"))
        if "migrations" not in path.parts
        for line, name in imported_modules(path)
        if name.startswith(("billing.payments", "billing.models"))
        or name in ("billing.payments", "billing.models")
    ]
    assert upward == []
