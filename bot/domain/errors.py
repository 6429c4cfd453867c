"""The one error hierarchy: every exception the app raises on purpose is a GateError.

A GateError carries ``message``, one line the person who asked can read (shown as is: never a secret, never a
traceback), an optional ``usage`` line, and a stable ``code``: what records keep as the error kind and what
metrics label. Listeners do not catch them: one ``@app.error`` (bot/listeners/errors.py) turns them into what the
user sees, and the conversation path keeps its own fallback (an answer under way must be finished).

Outcomes a user can fix inside a request (rate limits, budgets, a model the role may not use) are values, not
exceptions: ``Refusal`` in bot/domain/decisions.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SOMETHING_WENT_WRONG = "Something went wrong on my side. Please try again."


class GateError(Exception):
    """Base of every deliberate error: one user-facing line and a stable code."""

    code: str = "internal"

    def __init__(self, message: str, usage: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage


class Denied(GateError):
    """The caller may not do this (a right they lack). `/claude-admin` audits it as ``denied``, with ``target``
    (what was refused: a group, a role) or else the command's user."""

    code = "denied"

    def __init__(self, message: str, usage: str | None = None, *, target: str | None = None) -> None:
        super().__init__(message, usage)
        self.target = target


class CommandError(GateError):
    """Bad command text: ``usage`` is the usage line(s) to show with it. Nothing changed."""

    code = "bad_command"

    def __init__(self, message: str, usage: str | None = None) -> None:
        super().__init__(message, usage)
        self.usage: str = usage or ""


class RoleChangeDenied(Denied):
    """A grant, revoke or offboarding the actor may not make; the message is one line for the actor."""

    code = "role_change_denied"


class KeyCommandError(GateError):
    """A key, reminder or offboarding request the caller can fix; ``str(exc)`` is one line. Nothing changed."""

    code = "key_command"


class PolicyValueError(GateError):
    """A policy value that does not fit the field."""

    code = "bad_policy_value"


class UserGroupNotFound(GateError):
    """The user group does not exist in this workspace (or the app cannot see it)."""

    code = "user_group_not_found"


class ChannelNotFound(GateError):
    """Slack knows no such channel, or the app cannot see it (a private channel it is not in)."""

    code = "channel_not_found"


class AdminApiError(GateError):
    """An Anthropic Admin API call failed; the message is one line an admin can act on."""

    code = "admin_api"


class ConfigError(GateError):
    """A missing or invalid setting; the message is one line meant for the operator."""

    code = "config"


class StartupRefused(GateError):
    """A credential its service refused at start-up (Slack's auth.test or apps.connections.open), or an Anthropic
    key that cannot ask Claude: one line for the operator, and the process exits with status 1."""

    code = "startup_refused"


class CliError(GateError):
    """A one-line error for the operator of `claude-gate`; exit status 2."""

    code = "cli"


class AnswerNotDelivered(GateError):
    """The answer could not be written where the user reads it (Slack kept failing)."""

    code = "not_delivered"


@dataclass(eq=False)  # not frozen: raising through a context manager sets __traceback__ on the instance
class ClaudeFailure(GateError):
    """A failure of the call to Anthropic, classified; ``kind`` is its code (what the record keeps as the error).

    kinds: key / rate_limited / spend_limit / overloaded / server / timeout / connection / context / invalid /
    interrupted / cancelled (shutdown).
    """

    kind: str
    message: str
    status: int | None = None
    retry_after: float | None = None
    detail: str = field(default="", compare=False)
    should_retry: bool | None = None  # Anthropic's own word (``x-should-retry``), when it gave one

    @property
    def code(self) -> str:  # type: ignore[override]  # the kind is the code (GateError's is a class attribute)
        return self.kind

    @property
    def usage(self) -> str | None:  # type: ignore[override]
        return None

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"

    @property
    def is_key_failure(self) -> bool:
        return self.kind == "key"
