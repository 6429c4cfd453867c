"""One way to write a service (bot/services/base.py), checked over the source of bot/:

- nothing pries the engine out of a sessionmaker (``sessions.kw["bind"]``): the engine, the sessions and the
  read-only ones come from the one `Database` (bot/store/db.py);
- every class in bot/services named *Service, and every bot.services class that bot/app.py builds with the
  database (bar the record writer, NOT_SERVICES), subclasses `Service`, and app.py builds each with keyword
  arguments only, the four of the base among them;
- every `Service` subclass that has a constructor of its own takes the base's four first, keyword-only;
- no free function in bot/services takes the splatted context (``sessions`` with ``clock`` or ``settings``):
  such work is a method of a `Service`.

Each rule is also run on a planted violation, so a checker that finds nothing cannot pass by accident.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

from bot.services.base import Service

ROOT = Path(__file__).resolve().parents[2]
BOT = ROOT / "bot"
SERVICES = BOT / "services"
BASE_PARAMETERS = ["db", "settings", "clock", "slack"]
SPLATTED = {"sessions"}, {"clock", "settings"}  # a sessionmaker beside a clock or the settings
DATABASE_NAMES = {"db", "sessions", "engine"}  # what a constructor given the database is called with
# the one bot.services class bot/app.py builds with the database that is no use case: the batch writer of
# finished records, which holds one engine and a queue
NOT_SERVICES = {"RecordWriter"}


def sources(under: Path) -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(), filename=str(path))) for path in sorted(under.rglob("*.py"))]


def engines_pried(tree: ast.Module) -> list[int]:
    """Lines that subscript a ``.kw`` attribute (an async_sessionmaker's keyword arguments)."""
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "kw"]


def splatted_functions(tree: ast.Module) -> list[str]:
    """Module-level functions taking a sessionmaker with a clock or the settings."""
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names = {a.arg for a in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]}
            if SPLATTED[0] <= names and SPLATTED[1] & names:
                found.append(node.name)
    return found


def database_name(argument: ast.expr) -> str | None:
    """``db`` for an argument ``db`` or ``db.engine`` (not for a call given one, such as ``KeyAlerts(db=db)``)."""
    while isinstance(argument, ast.Attribute):
        argument = argument.value
    return argument.id if isinstance(argument, ast.Name) else None


def built_in(tree: ast.Module, function: str) -> dict[str, list[ast.Call]]:
    """Class name → the calls of it inside ``function`` given the database, for names imported from bot.services."""
    imported = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and (node.module or "").startswith("bot.services") for alias in node.names}
    body = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == function)
    calls: dict[str, list[ast.Call]] = {}
    for node in ast.walk(body):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in imported:
            given = {database_name(arg) for arg in [*node.args, *(k.value for k in node.keywords)]}
            if node.func.id[:1].isupper() and given & DATABASE_NAMES:
                calls.setdefault(node.func.id, []).append(node)
    return calls


def not_by_the_base(calls: dict[str, list[ast.Call]]) -> list[str]:
    return [f"{name} (line {call.lineno})" for name, made in calls.items() if name not in NOT_SERVICES
            for call in made if call.args or not set(BASE_PARAMETERS) <= {k.arg for k in call.keywords}]


def service_classes() -> list[type]:
    """Every class defined in bot/services, imported."""
    found = []
    for path, tree in sources(SERVICES):
        names = [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
        if names:
            module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
            found.extend(getattr(module, name) for name in names)
    return found


def test_no_module_pries_the_engine_out_of_a_sessionmaker() -> None:
    pried = {str(path.relative_to(ROOT)): lines for path, tree in sources(BOT) if (lines := engines_pried(tree))}
    assert pried == {}
    assert engines_pried(ast.parse('engine = sessions.kw["bind"]')) == [1]


def test_no_free_function_in_services_takes_a_splatted_context() -> None:
    splatted = {str(path.relative_to(ROOT)): names for path, tree in sources(SERVICES)
                if (names := splatted_functions(tree))}
    assert splatted == {}
    planted = ast.parse("async def list_keys(sessions, clock, settings): ...\nasync def ok(sessions, user): ...")
    assert splatted_functions(planted) == ["list_keys"]


def test_every_service_takes_the_one_constructor() -> None:
    classes = service_classes()
    named = [cls.__name__ for cls in classes if cls.__name__.endswith("Service") and not issubclass(cls, Service)]
    assert named == []
    app = ast.parse((BOT / "app.py").read_text())
    built = built_in(app, "build_app")
    assert {"Gate", "ChatService", "PersonalService", "AdminService"} <= built.keys()  # the rule sees them
    by_name = {cls.__name__: cls for cls in classes}
    assert [name for name in built if name not in NOT_SERVICES and not issubclass(by_name[name], Service)] == []
    assert not_by_the_base(built) == []
    planted = ast.parse("from bot.services.conversation.gate import Gate\n"
                        "def build_app(settings):\n    return Gate(sessions, settings, clock, records)")
    assert not_by_the_base(built_in(planted, "build_app")) == ["Gate (line 3)"]
    own = {cls.__name__: list(inspect.signature(cls.__init__).parameters.values())[1:] for cls in classes
           if isinstance(cls, type) and issubclass(cls, Service) and "__init__" in vars(cls)}
    assert own  # the gate, the chat and others add keyword arguments of their own
    for name, parameters in own.items():
        assert [p.name for p in parameters[:4]] == BASE_PARAMETERS, name
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters), name
