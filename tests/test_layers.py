"""The layer contract of docs/architecture.md, checked over every import in bot/ (tests and bench may import anything).

- bot/domain imports only the standard library and bot.domain: pure rules, no I/O, no SDK, no SQLAlchemy.
- bot/services never imports slack_sdk, slack_bolt, bot.slack or bot.listeners: Slack is reached through the
  Workspace port (bot/services/ports.py), implemented in bot/slack.
- Only the wiring (bot/app.py) and the command line import bot.listeners or bot.app.

Imports under ``if TYPE_CHECKING:`` count too: a type-only import still ties the layers together.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOT = ROOT / "bot"

SERVICES_MAY_NOT = ("slack_sdk", "slack_bolt", "bot.slack", "bot.listeners")
WIRING = ("bot.app", "bot.cli", "bot.__main__")  # the wiring and the command line (bot.cli, bot.cli_keys, …)


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
    return found


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
