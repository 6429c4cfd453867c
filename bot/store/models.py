"""SQLAlchemy 2.0 typed models. Change only together with an Alembic revision."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    false,
    true,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.domain.keys import KeyStatus

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identities.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps are stored in UTC and always read back timezone-aware, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use bot.store.clock")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UtcDateTime()}


class RoleGrant(Base):
    """An explicit role for one Slack user (at most one per user)."""

    __tablename__ = "role_grants"

    slack_user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    team_id: Mapped[str | None] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(16))
    granted_by: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[datetime]


class TimedGrant(Base):
    """A time-bound role for one Slack user (at most one per user), above their permanent grant (`role_grants`).

    It is honoured only while ``expires_at`` is ahead (the gate compares at admission); the scheduler leader deletes
    it once it has passed, and the person falls back to their permanent grant, groups or the default role.
    """

    __tablename__ = "timed_grants"

    slack_user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    team_id: Mapped[str | None] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(16))
    granted_by: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[datetime]
    expires_at: Mapped[datetime]

    __table_args__ = (Index("ix_timed_grants_expires_at", "expires_at"),)


class AccessRequest(Base):
    """Someone refused asks for a role; the first approve or deny wins (a conditional update of ``status``)."""

    __tablename__ = "access_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    slack_user_id: Mapped[str] = mapped_column(String(32))
    team_id: Mapped[str | None] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # pending / approved / denied / expired
    # "<user>:<role>" while pending, NULL after: one pending request per person and role, across processes
    open_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None]
    duration_hours: Mapped[int | None] = mapped_column(Integer)  # of an approval for a time; NULL: permanent
    grant_until: Mapped[datetime | None]

    __table_args__ = (Index("ix_access_requests_status_created_at", "status", "created_at"),)


class AccessRequestMessage(Base):
    """Every copy of a request posted to approvers (the alert channel, or each admin's DM), to update them all."""

    __tablename__ = "access_request_messages"

    request_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    ts: Mapped[str] = mapped_column(String(32), primary_key=True)


class RolePolicyRow(Base):
    __tablename__ = "role_policies"

    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    models: Mapped[list[str]] = mapped_column(JSON)
    max_tokens: Mapped[int] = mapped_column(Integer)
    rpm_limit: Mapped[int] = mapped_column(Integer)
    daily_token_budget: Mapped[int | None] = mapped_column(Integer)
    daily_usd_micros: Mapped[int | None] = mapped_column(BigInteger)  # per person, policy field daily_usd
    monthly_usd_micros: Mapped[int | None] = mapped_column(BigInteger)  # per person, policy field monthly_usd
    workspace: Mapped[str] = mapped_column(String(64), default="default")
    attachments: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    schedules: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # scheduled prompts a person keeps
    updated_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime | None]


class UserPreference(Base):
    __tablename__ = "user_preferences"

    slack_user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    preferred_model: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[datetime]


class ApiKey(Base):
    """An Anthropic API key. The secret is never stored: only the environment variable that holds it."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    label: Mapped[str] = mapped_column(String(64), unique=True)
    workspace: Mapped[str] = mapped_column(String(64), default="default")
    env_var: Mapped[str | None] = mapped_column(String(128))
    anthropic_key_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    key_hint: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime]
    rotate_days: Mapped[int] = mapped_column(Integer, default=90)
    status: Mapped[str] = mapped_column(String(16), default=KeyStatus.ACTIVE.value)  # a KeyStatus
    revoked_by: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None]
    last_reminded_on: Mapped[date | None] = mapped_column(Date)
    last_alerted_at: Mapped[datetime | None]
    last_refused_at: Mapped[datetime | None]  # Anthropic's latest 401/403 for it: a key is trusted again after quiet
    # What Anthropic's Admin API says about the key (`keys sync`, `keys add … anthropic_id=`).
    anthropic_name: Mapped[str | None] = mapped_column(String(256))
    anthropic_workspace_id: Mapped[str | None] = mapped_column(String(128))
    anthropic_status: Mapped[str | None] = mapped_column(String(16))
    anthropic_creator_id: Mapped[str | None] = mapped_column(String(128))
    anthropic_created_at: Mapped[datetime | None]  # the key's real age; created_at is when it was registered
    creator_email: Mapped[str | None] = mapped_column(String(256))
    synced_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_api_keys_workspace_status", "workspace", "status"),)


class RequestRecord(Base):
    """Every request, admitted or refused (docs/security.md). Admitted rows also drive the rpm limit."""

    __tablename__ = "request_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime]
    slack_user_id: Mapped[str] = mapped_column(String(32))
    team_id: Mapped[str | None] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(16))
    model: Mapped[str | None] = mapped_column(String(100))
    key_label: Mapped[str | None] = mapped_column(String(64))
    max_tokens: Mapped[int | None] = mapped_column(Integer)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    # Micro-dollars: the reservation while in flight, the real cost once finished (docs/spend.md)
    cost_micros: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    reserved_micros: Mapped[int | None] = mapped_column(BigInteger)  # what admission reserved (worst case)
    input_estimate: Mapped[int | None] = mapped_column(Integer)  # upper bound of the input tokens, reserved
    cache_write_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cache_read_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    usage_source: Mapped[str | None] = mapped_column(String(16))  # anthropic / streamed (from the text) / estimated
    charged_to: Mapped[list[str] | None] = mapped_column(JSON)  # budget scopes charged at admission (the ledger)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    admitted: Mapped[bool] = mapped_column(Boolean)
    outcome: Mapped[str] = mapped_column(String(16))  # admitted (in flight) / ok / error / interrupted / refused
    refusal_reason: Mapped[str | None] = mapped_column(String(32))
    error_type: Mapped[str | None] = mapped_column(String(64))
    surface: Mapped[str | None] = mapped_column(String(16))  # mention / dm / assistant / cli
    channel_id: Mapped[str | None] = mapped_column(String(32))
    thread_ts: Mapped[str | None] = mapped_column(String(32))
    prompt: Mapped[str | None] = mapped_column(Text)  # only when LOG_PROMPTS=true
    feedback: Mapped[str | None] = mapped_column(String(8))
    # how many requests the row stands for: 1, or the refusals counted in one aggregate record while the database
    # was away and the record writer's memory was full (bot/services/conversation/records.py)
    requests: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # the process that admitted it (its ProcessLease holder): once that lease lapses, any live process closes the
    # record as interrupted. None for records admitted without a lease (refusals, in-process tests): the age rule.
    process_id: Mapped[str | None] = mapped_column(String(128))
    # who pressed Slack's stop button on the answer's agent session (any process may receive the event); the
    # process streaming the answer reads it at each write to Slack and stops there
    stop_requested_by: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        Index("ix_request_records_user_admitted_time", "slack_user_id", "admitted", "created_at"),
        Index("ix_request_records_created_at", "created_at"),
        Index("ix_request_records_outcome", "outcome"),
    )

    @hybrid_property
    def estimated_cost(self) -> float:
        """Dollars, for reading (money is stored as ``cost_micros``)."""
        return self.cost_micros / 1_000_000


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict | None] = mapped_column(JSON)

    __table_args__ = (Index("ix_audit_log_at", "at"),)


class ProcessedEvent(Base):
    """Slack event ids already taken by some process: a retry of one is acked and not answered again."""

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime]


class SchedulerState(Base):
    """Small shared state for scheduled jobs: last successful run, leader lease."""

    __tablename__ = "scheduler_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(128))
    expires_at: Mapped[datetime | None]
    last_run_at: Mapped[datetime | None]


class ProcessLease(Base):
    """One row per live `serve` or `chat` process, renewed every few seconds
    (bot/services/conversation/process_leases.py)."""

    __tablename__ = "process_leases"

    holder: Mapped[str] = mapped_column(String(128), primary_key=True)  # host:pid:tag (bot/services/process_leases)
    started_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class GroupRoleMapping(Base):
    """A Slack user group whose members get a role (the effective role is the highest that applies)."""

    __tablename__ = "group_role_mappings"

    usergroup_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    handle: Mapped[str | None] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    mapped_by: Mapped[str] = mapped_column(String(64))
    mapped_at: Mapped[datetime]
    members_synced_at: Mapped[datetime | None]


class GroupMember(Base):
    """Membership of mapped user groups, shared by every process (refreshed from usergroups.users.list)."""

    __tablename__ = "group_members"

    usergroup_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    slack_user_id: Mapped[str] = mapped_column(String(32), primary_key=True)

    __table_args__ = (Index("ix_group_members_user", "slack_user_id"),)


class ChannelSetting(Base):
    """Per-channel settings (docs/channels-and-data.md), read by the gate in its access statement: no cache anywhere."""

    __tablename__ = "channel_settings"

    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(128))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    off_by: Mapped[str | None] = mapped_column(String(64))  # who switched it off
    model: Mapped[str | None] = mapped_column(String(100))
    prompt: Mapped[str | None] = mapped_column(Text)
    roles: Mapped[list[str] | None] = mapped_column(JSON)  # None: every role
    set_by: Mapped[dict | None] = mapped_column(JSON)  # setting → who set it last
    updated_at: Mapped[datetime]


class ViewingContext(Base):
    """What a person last looked at while the bot's DM was open (``app_context_changed``), shared by every
    process: a DM that asks about "this channel" reads this channel, and only when asked."""

    __tablename__ = "viewing_contexts"

    slack_user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str | None] = mapped_column(String(32))  # None: nothing (or not a channel) in view
    team_id: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime]


class AnsweredThread(Base):
    """A thread where the bot talks with someone, looked up by its primary key: a channel thread it answered them
    in (they may follow up without mentioning it, THREAD_FOLLOW_UPS), or a thread of Slack's assistant panel
    (``panel``: recorded by ``assistant_thread_started``; its root is the person's, like an agent DM thread's)."""

    __tablename__ = "answered_threads"

    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    thread_ts: Mapped[str] = mapped_column(String(32), primary_key=True)
    slack_user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    answered_at: Mapped[datetime] = mapped_column(index=True)  # retention purges old rows; each answer renews it
    panel: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
class Budget(Base):
    """A USD budget of one person (an override of their role's), one user group (pooled) or the org (pooled)."""

    __tablename__ = "budgets"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)  # user:U… / group:S… / org
    name: Mapped[str | None] = mapped_column(String(128))  # a group's handle, for display
    daily_micros: Mapped[int | None] = mapped_column(BigInteger)
    monthly_micros: Mapped[int | None] = mapped_column(BigInteger)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime]


class SpendCounter(Base):
    """Spend of one scope in one period: reservations of requests in flight plus real costs of finished ones.

    Written only in the gate's transaction (under the scope's lock) and by the record writer's finish (the
    difference between the real cost and the reservation), so reading it is exact and costs one row.
    """

    __tablename__ = "spend_counters"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)  # user:U… / group:S… / org
    period: Mapped[str] = mapped_column(String(8), primary_key=True)  # day / month
    starts: Mapped[date] = mapped_column(Date, primary_key=True)  # the period's first day in BUDGET_TZ
    micros: Mapped[int] = mapped_column(BigInteger, default=0)
    tokens: Mapped[int] = mapped_column(BigInteger, default=0)


class BudgetAlert(Base):
    """A budget alert already sent (claimed by the process that sends it): once per budget, period and level."""

    __tablename__ = "budget_alerts"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(String(8), primary_key=True)
    starts: Mapped[date] = mapped_column(Date, primary_key=True)
    percent: Mapped[int] = mapped_column(Integer, primary_key=True)
    sent_at: Mapped[datetime]


class ScheduledPrompt(Base):
    """A prompt a person asked to have run on a schedule (`/claude schedule`), answered in ``channel_id`` as them.

    ``next_run_at`` is the occurrence the schedule waits for; whoever runs it first moves it on in one conditional
    UPDATE (bot/services/schedules/store.py), so an occurrence runs once across processes. The prompt text stays
    while the schedule lives (not purged by RETENTION_DAYS); unschedule, forget and offboard delete the row.
    """

    __tablename__ = "scheduled_prompts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    slack_user_id: Mapped[str] = mapped_column(String(32), index=True)
    team_id: Mapped[str | None] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    when_text: Mapped[str] = mapped_column(String(128))  # as typed: "every weekday 09:00"
    cron: Mapped[str] = mapped_column(String(128))  # five crontab fields
    timezone: Mapped[str] = mapped_column(String(64))  # the creator's Slack time zone when it was made
    prompt: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="active")  # active / paused
    paused_reason: Mapped[str | None] = mapped_column(String(16))  # role / left
    next_run_at: Mapped[datetime]
    last_run_at: Mapped[datetime | None]
    last_outcome: Mapped[str | None] = mapped_column(String(32))  # ok / error / refused:<reason> / not_posted
    refusal_told: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_scheduled_prompts_state_next_run_at", "state", "next_run_at"),)
