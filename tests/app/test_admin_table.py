"""The one way to register a `/claude-admin` handler: each capability's commands.py table, composed by the dispatcher.

Every subcommand of the grammar has exactly one handler, from exactly one capability (or the dispatcher's own
`help`), in the app that serves Slack and in the shell's; a table that doubles, misses or invents a subcommand stops
the dispatcher from being built at all.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.domain.commands import ADMIN, subcommands_of
from bot.domain.roles import Role
from bot.services.admin.dispatcher import AdminService, compose
from bot.services.base import Caller, Handler
from tests.support.harness import Harness

GRAMMAR = [sub.name for sub in subcommands_of(ADMIN)]


def owners(admin: AdminService) -> dict[str, list[str]]:
    """Each subcommand name → the modules whose tables hold it (the dispatcher's own `help` included)."""
    found: dict[str, list[str]] = {"help": [type(admin).__module__]}
    for capability in admin.capabilities:
        for name, handler in capability.handlers().items():
            assert getattr(handler, "__self__", None) is capability, f"`{name}` is not {capability!r}'s own"
            found.setdefault(name, []).append(type(capability).__module__)
    return found


def check_table(admin: AdminService) -> None:
    assert len(set(GRAMMAR)) == len(GRAMMAR)
    found = owners(admin)
    assert sorted(found) == sorted(GRAMMAR)
    doubled = {name: modules for name, modules in found.items() if len(modules) != 1}
    assert doubled == {}
    assert sorted(admin.handlers) == sorted(GRAMMAR)
    # the table is made of the capabilities' handlers, and nothing else
    for name, (module,) in found.items():
        handler = admin.handlers[name]
        assert type(handler.__self__).__module__ == module  # type: ignore[attr-defined]
    modules = [type(capability).__module__ for capability in admin.capabilities]
    assert len(set(modules)) == len(modules), "one table per capability"
    for module in modules:
        package, _, leaf = module.rpartition(".")
        assert leaf == "commands" and package.startswith("bot.services."), module
    assert all(capability.handlers() for capability in admin.capabilities), "a capability with no subcommand"


async def test_every_subcommand_has_one_handler_from_one_capability(harness: Harness) -> None:
    check_table(harness.runtime.admin)
    by_capability = {module.split(".")[2]: sorted(name for name, (m,) in owners(harness.runtime.admin).items()
                                                   if m == module)
                     for module in {type(c).__module__ for c in harness.runtime.admin.capabilities}}
    assert by_capability["access"] == sorted(["grant", "revoke", "whois", "users", "groups", "groups map",
                                              "groups unmap", "policy", "policy set", "requests",
                                              "requests approve", "requests deny"])
    assert by_capability["spend"] == sorted(["budget", "budget set", "usage", "usage chart", "usage reconcile"])
    assert by_capability["data"] == sorted(["audit", "audit export", "forget"])
    assert by_capability["channels"] == sorted(["channels", "channel"])
    assert by_capability["keys"] == sorted(["keys", "keys add", "keys revoke", "keys sync", "reminders",
                                            "reminders run", "offboard"])


async def test_the_shell_composes_the_same_table(harness: Harness) -> None:
    from bot.cli.context import ShellSlackPort, shell_admin

    shell = shell_admin(harness.runtime.db, harness.runtime.settings, ShellSlackPort(None, None), None)
    check_table(shell)
    assert {name: type(h.__self__) for name, h in shell.handlers.items()} == {  # type: ignore[attr-defined]
        name: type(h.__self__) for name, h in harness.runtime.admin.handlers.items()}  # type: ignore[attr-defined]


class Table:
    def __init__(self, names: list[str]) -> None:
        self.names = names

    async def answer(self, caller: Caller, command: Any) -> Any:
        raise AssertionError("never run")

    def handlers(self) -> dict[str, Handler]:
        return dict.fromkeys(self.names, self.answer)


@pytest.mark.parametrize(("tables", "error"), [
    ([GRAMMAR[1:], ["grant"]], "`grant` has two handlers (the second from Table)"),
    ([GRAMMAR[1:], ["help"]], "`help` has two handlers"),
    ([GRAMMAR[2:]], f"no handler for {GRAMMAR[1]}"),
    ([GRAMMAR[1:], ["teleport"]], "handlers for subcommands the grammar does not know: teleport"),
])
def test_a_table_that_doubles_misses_or_invents_a_subcommand_is_refused(tables: list[list[str]],
                                                                         error: str) -> None:
    assert GRAMMAR[0] == "help"
    own = Table(["help"]).handlers()
    with pytest.raises(ValueError, match="^" + re.escape(error)):
        compose(own, [Table(names) for names in tables])
    assert sorted(compose(own, [Table(GRAMMAR[1:])])) == sorted(GRAMMAR)


@pytest.mark.parametrize(("text", "name", "target"), [
    ("groups map <!subteam^S0001|@eng> owner", "groups map", "@eng"),
    ("policy set owner rpm_limit 1", "policy set", "owner"),
    ("forget <@UOWNER>", "forget", "UOWNER"),
    ("budget set owner daily 5", "budget set", None),
])
async def test_a_capability_refusal_is_audited_by_the_dispatcher_with_its_target(harness: Harness, text: str,
                                                                                 name: str, target: str | None) -> None:
    """A capability raises a Denied (with what was refused); the dispatcher audits it and answers one line."""
    for user, role in (("UOWNER", Role.OWNER), ("UADMIN", Role.ADMIN)):
        harness.slack.add_user(user, name=user.lower())
        await harness.grant(user, role)
    answer = await harness.command("UADMIN", ADMIN, text)
    assert ":no_entry:" in answer["text"] and "Only an owner can" in answer["text"]
    denied = [entry for entry in await harness.audit() if entry.action == "denied"]
    assert [(e.actor, e.target, (e.detail or {}).get("command")) for e in denied] == [("UADMIN", target, name)]
