"""The layer contract of docs/architecture.md, checked over every import in bot/ (tests and bench may import anything).

- bot/domain imports only the standard library and bot.domain: pure rules, no I/O, no SDK, no SQLAlchemy.
- bot/services never imports slack_sdk, slack_bolt, bot.slack or bot.listeners: Slack is reached through the
  Workspace port (bot/services/ports.py), implemented in bot/slack.
- Only the wiring (bot/app.py) and the command line import bot.listeners or bot.app.
- bot/listeners never imports bot.store: a listener reads the Slack payload and calls a service, which owns the rows.
- No import circle anywhere in bot/ (the command line's package included): the module graph is acyclic.

Imports under ``if TYPE_CHECKING:`` and inside functions count too: a type-only or a late import still ties the
modules together.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOT = ROOT / "bot"

SERVICES_MAY_NOT = ("slack_sdk", "slack_bolt", "bot.slack", "bot.listeners")
WIRING = ("bot.app", "bot.cli", "bot.__main__")  # the wiring and the command line (the bot.cli package)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # `from bot import slack` imports the module bot.slack
            found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names
                         if is_module(f"{module}.{alias.name}"))
    return found


def is_module(name: str) -> bool:
    if not name.startswith("bot."):
        return False
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violations() -> list[str]:
    found: list[str] = []
    stdlib = sys.stdlib_module_names
    for path in sorted(BOT.rglob("*.py")):
        name = module_name(path)
        where = path.relative_to(ROOT)
        for line, module in imports_of(path):
            top = module.split(".")[0]
            if within(name, "bot.domain") and not (top in stdlib or top == "__future__" or
                                                   within(module, "bot.domain")):
                found.append(f"{where}:{line}: the domain imports {module} (only the standard library and itself)")
            if within(name, "bot.services") and any(within(module, banned) for banned in SERVICES_MAY_NOT):
                found.append(f"{where}:{line}: a service imports {module} (reach Slack through the Workspace port)")
            if (within(module, "bot.listeners") or module == "bot.app") and not (
                    name.startswith(WIRING) or within(name, "bot.listeners")):
                found.append(f"{where}:{line}: {name} imports {module} (only the wiring and the CLI may)")
            if within(name, "bot.listeners") and within(module, "bot.store"):
                found.append(f"{where}:{line}: a listener imports {module} (call a service; it owns the rows)")
    found.extend(f"import circle: {' → '.join(cycle)}" for cycle in import_circles(import_graph()))
    return found


def import_graph() -> dict[str, set[str]]:
    """Each module of bot/ and the modules of bot/ it imports (anywhere in the file)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(BOT.rglob("*.py")):
        name = module_name(path)
        graph[name] = {module for _, module in imports_of(path) if is_module(module) and module != name}
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle of imports for each strongly connected component of more than one module (Tarjan's
    algorithm, iterative), as the modules in import order back to the first: ``[a, b, a]``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            child = next(edges, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)
    return [_circle_in(graph, component) for component in components]


def _circle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest path from the component's first module back to itself, inside the component."""
    start = min(component)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph.get(node, set()) & component):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no circle in {sorted(component)}")


def test_the_layers_hold() -> None:
    assert violations() == []


@pytest.mark.parametrize(("module", "source", "complaint"), [
    ("bot/domain/x.py", "import sqlalchemy\n", "the domain imports sqlalchemy"),
    ("bot/domain/x.py", "from bot.store.clock import Clock\n", "the domain imports bot.store.clock"),
    ("bot/services/x.py", "from slack_sdk.errors import SlackApiError\n", "a service imports slack_sdk.errors"),
    ("bot/services/x.py", "from bot import slack\n", "a service imports bot.slack"),
    ("bot/services/x.py", "from ..slack.render import section\n", "a service imports bot.slack.render"),
    ("bot/slack/x.py", "from bot.listeners.events import Conversations\n", "imports bot.listeners.events"),
    ("bot/store/x.py", "from bot.app import Runtime\n", "imports bot.app"),
    ("bot/listeners/x.py", "def f():\n    from bot.store.models import Budget\n",
     "a listener imports bot.store.models"),
])
def test_the_check_sees_each_kind_of_breach(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str,
                                            source: str, complaint: str) -> None:
    """The contract is checked against a copy of bot/ with one bad import added, so a check that sees nothing fails."""
    import shutil

    shutil.copytree(BOT, tmp_path / "bot", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / module).write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "BOT", tmp_path / "bot")
    found = [v for v in violations() if v.startswith(module)]
    assert len(found) == 1 and complaint in found[0], found


def test_the_cycle_finder_finds_each_circle_and_only_circles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"f"}, "f": {"e"}, "g": {"a"}}
    assert sorted(import_circles(graph)) == [["a", "b", "c", "a"], ["e", "f", "e"]]
    assert import_circles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


@pytest.mark.parametrize(("planted", "kind"), [
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot.domain import y\n", "type-only"),
    ("def later():\n    from bot.domain.y import thing\n", "inside a function"),
])
def test_a_planted_import_circle_fails_the_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, planted: str,
                                                     kind: str) -> None:
    """Two tiny modules that import each other, added to a copy of bot/, are the one circle reported."""
    import shutil

    shutil.copytree(BOT, tmp_path / "bot", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "bot/domain/x.py").write_text(planted)
    (tmp_path / "bot/domain/y.py").write_text("from bot.domain.x import later\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "BOT", tmp_path / "bot")
    assert [v for v in violations() if v.startswith("import circle")] == [
        "import circle: bot.domain.x → bot.domain.y → bot.domain.x"], kind
