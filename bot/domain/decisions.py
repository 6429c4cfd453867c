"""What the gate decides: an admitted request, a refusal the user can act on, or a Slack event already taken."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.domain.roles import Role


class RefusalReason(StrEnum):
    EXTERNAL_USER = "external_user"
    GUEST = "guest"
    UNKNOWN_USER = "unknown_user"
    ROLE_CANNOT_CHAT = "role_cannot_chat"
    CHANNEL_OFF = "channel_off"  # an admin switched Claude off in that channel
    CHANNEL_ROLE = "channel_role"  # the channel admits only some roles
    SECRET = "secret"  # the message or its files hold a credential (SECRET_POLICY=block)
    MODEL_NOT_ALLOWED = "model_not_allowed"
    UNKNOWN_MODEL = "unknown_model"
    MODEL_RETIRED = "model_retired"  # Anthropic's model list marks the model retired (or no longer has it)
    RATE_LIMITED = "rate_limited"
    BUDGET_EXHAUSTED = "budget_exhausted"
    MODEL_NOT_PRICED = "model_not_priced"  # a USD budget applies and the model has no price
    NO_ACTIVE_KEY = "no_active_key"
    DATABASE_UNAVAILABLE = "database_unavailable"


@dataclass(frozen=True)
class Refusal:
    reason: RefusalReason
    message: str  # why, in one line
    hint: str  # what to do about it
    retry_after_seconds: int | None = None
    request_role: Role | None = None  # the lowest role that would have passed: the refusal offers "Request access"
    budget: tuple[str, str] | None = None  # (scope, period) of the budget that refused it


@dataclass(frozen=True)
class AlreadyTaken:
    """The Slack event was claimed before (a retry, or another process has it): nothing to answer or record."""

    event_id: str


@dataclass(frozen=True)
class Admission:
    record_id: int
    user_id: str
    role: Role
    model: str
    max_tokens: int
    key_label: str
    key_env_var: str
    workspace: str
    key_failing: bool = False  # the key was marked failing: an answer that gets through marks it active again
    attachments: bool = True  # the role may send files with a question
    max_tokens_limited_by: str = ""  # what set ``max_tokens`` (TokenGrant.limited_by), for the cut-off note
    channel_prompt: str | None = None  # added to the system prompt in the channel asked in (docs/channels-and-data.md)
    admitted_at: datetime | None = None
    input_estimate: int = 0  # upper bound of the input tokens, reserved
    reserved_micros: int = 0  # the worst case reserved against every budget in ``charged_to``
    charged_to: tuple[str, ...] = ()  # budget scopes the request was charged to (person, pools)
    # a USD budget was at or past its alert level once this request's worst case was counted: its alerts are checked
    # when the answer ends (below it, the real cost, never above the reservation, cannot reach a level)
    budget_alert_due: bool = False

    @property
    def reserved_tokens(self) -> int:
        return self.input_estimate + self.max_tokens


class Outcome(StrEnum):
    ADMITTED = "admitted"  # in flight; replaced by ok/error when the answer ends
    OK = "ok"
    ERROR = "error"
    INTERRUPTED = "interrupted"  # closed by the sweep: the process answering it died or lost the database
    STOPPED = "stopped"  # the asker (or an admin) pressed Slack's stop button: charged what was generated
    REFUSED = "refused"
