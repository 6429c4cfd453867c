"""Every setting of Claude Gate in one typed place (docs/configuration.md), validated at start."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import load_dotenv
from pydantic import Field, PrivateAttr, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.domain.errors import ConfigError as ConfigError
from bot.domain.errors import StartupRefused
from bot.domain.keys import is_api_key
from bot.domain.models import ModelCatalog
from bot.domain.pricing import Price, PriceTable
from bot.domain.roles import Role
from bot.domain.secrets import SecretPolicy
from bot.price_source import list_prices, override_price, with_overrides
from bot.sdk_models import default_model_ids

_DEFAULT_MODELS = default_model_ids()

# How to get each setting: the start-up error says it beside the setting's name.
HOW_TO_GET: dict[str, str] = {
    "SLACK_BOT_TOKEN": "Bot User OAuth Token (xoxb-…), on the Slack app's OAuth & Permissions page",
    "SLACK_SIGNING_SECRET": "Signing Secret, on the app's Basic Information page (not for Socket Mode)",
    "SLACK_APP_TOKEN": "an app-level token (xapp-…) with connections:write, on the app's Basic Information page",
    "ANTHROPIC_API_KEY": "an API key (sk-ant-…), at console.anthropic.com → API keys",
    "DATABASE_URL": "a SQLAlchemy URL such as sqlite:///claude_gate.db or postgresql://user@host/db",
    "DEFAULT_ROLE": f"one of {', '.join(Role)}",
    "REMINDER_CRON": "five crontab fields, e.g. '0 9 * * 1-5'",
    "REMINDER_TZ": "an IANA time zone such as UTC or Europe/Berlin",
    "BUDGET_TZ": "an IANA time zone such as UTC or Europe/Berlin",
    "LOG_LEVEL": "one of DEBUG, INFO, WARNING, ERROR",
    "MODEL_PRICES": 'JSON dollars per million tokens by model ID or alias, e.g. {"claude-opus-4-1": [15, 75]} or '
    '{"m": {"input": 2, "output": 10, "cache_read": 0.1}} (docs/spend.md)',
    "PORT": "a TCP port number, 1-65535",
    "LOG_FORMAT": "text or json",
    "SECRET_POLICY": "one of block, redact, off",
    "RETENTION_DAYS": "a whole number of days, at least 1",
    "AUDIT_RETENTION_DAYS": "a whole number of days, at least 1, or unset to keep the audit log",
}

# What a secret's value starts with: a token pasted into the wrong variable is caught at start, not at the first
# request. Slack's rotating bot tokens start with xoxe.xoxb-.
SECRET_PREFIXES: dict[str, tuple[str, ...]] = {
    "slack_bot_token": ("xoxb-", "xoxe.xoxb-"),
    "slack_app_token": ("xapp-",),
    "anthropic_api_key": ("sk-ant-",),
}


@dataclass(frozen=True)
class SettingProblem:
    """One setting that stops start-up: missing (unset or blank) or invalid."""

    name: str  # the environment variable, e.g. SLACK_BOT_TOKEN
    missing: bool
    detail: str  # what is wrong, or where to get it

    @property
    def line(self) -> str:
        if self.missing:
            return f"Missing setting {self.name}: {self.detail}."
        return f"Invalid setting {self.name}: {self.detail}."


class SettingsProblems(ConfigError):
    """Missing or invalid settings. One problem reads as one line; several as a short block, one line each."""

    def __init__(self, problems: list[SettingProblem]) -> None:
        self.problems = problems
        super().__init__(self.text())

    @property
    def any_missing(self) -> bool:
        return any(problem.missing for problem in self.problems)

    def text(self) -> str:
        if len(self.problems) == 1:
            return self.problems[0].line
        missing = sum(problem.missing for problem in self.problems)
        invalid = len(self.problems) - missing
        counts = " and ".join(part for part in (
            f"{missing} missing" if missing else "", f"{invalid} invalid" if invalid else "") if part)
        width = max(len(problem.name) for problem in self.problems)
        lines = [f"{counts} settings (set them in .env or the environment):"]
        lines += [f"  {problem.name:<{width}}  {'missing' if problem.missing else 'invalid'}: {problem.detail}"
                  for problem in self.problems]
        return "\n".join(lines)


def is_placeholder(value: str) -> bool:
    """Blank, or still the example's `xoxb-...`: no real token or key ends in an ellipsis."""
    value = value.strip()
    return not value or value.endswith(("...", "…"))


def serving_gaps(*, bot_token: str | None, signing_secret: str | None, app_token: str | None,
                 api_key: str | None) -> list[SettingProblem]:
    """The settings `serve` cannot start without that are unset or blank (blank counts as unset)."""
    def unset(value: str | None) -> bool:
        return value is None or is_placeholder(value)

    missing = []
    if unset(bot_token):
        missing.append("SLACK_BOT_TOKEN")
    if unset(app_token) and unset(signing_secret):
        missing.append("SLACK_SIGNING_SECRET")
    if unset(api_key):
        missing.append("ANTHROPIC_API_KEY")
    return [SettingProblem(name, True, HOW_TO_GET[name]) for name in missing]


class Settings(BaseSettings):
    # A blank variable (`SLACK_BOT_TOKEN=` as in .env.example) counts as unset: its default, or missing.
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False, env_ignore_empty=True)
    _prices: PriceTable | None = PrivateAttr(default=None)  # the price table, built on first use

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    anthropic_admin_key: SecretStr | None = None
    database_url: str = "sqlite:///claude_gate.db"
    port: int = Field(3000, ge=1, le=65535)

    bootstrap_owners: Annotated[list[str], NoDecode] = []
    default_role: Role = Role.VIEWER
    allow_external_users: bool = False
    allow_guests: bool = False

    reminder_channel: str | None = None
    reminder_cron: str = "0 9 * * 1-5"
    reminder_tz: str = "UTC"
    rotation_days: int = Field(90, ge=1)
    remind_before_days: int = Field(14, ge=0)

    admin_alert_channel: str | None = None
    # a UTC day whose recorded cost differs from Anthropic's cost report by more than this is alerted
    reconcile_drift_percent: float = Field(default=5.0, ge=0, le=1000)
    log_prompts: bool = False
    secret_policy: SecretPolicy = SecretPolicy.BLOCK  # credentials in prompts (docs/channels-and-data.md)
    retention_days: int = Field(90, ge=1)  # stored prompt text, feedback, thread references
    audit_retention_days: int | None = Field(None, ge=1)  # unset: the audit log is kept
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"  # json: one JSON object a line, for log shippers
    metrics_token: SecretStr | None = None  # /metrics answers loopback clients, or this bearer token when set

    model_haiku: str = _DEFAULT_MODELS["haiku"]
    model_sonnet: str = _DEFAULT_MODELS["sonnet"]
    model_opus: str = _DEFAULT_MODELS["opus"]

    # Prices on top of the price source's (genai-prices), US dollars per million tokens, keyed by model ID or
    # family (JSON): {"claude-opus-4-1": [15, 75]}, or {"m": {"input": 2, "output": 10, "cache_read": 0.1,
    # "tier_above": 100000, "tier": {...}, "from": "2026-10-07"}}; an override replaces the model's whole entry
    # (a dated one, from its day on)
    model_prices: dict[str, tuple[Price, ...]] = {}

    thread_follow_ups: bool = True  # answer follow-ups in a channel thread the bot answered without a mention

    system_prompt: str = (
        "You are Claude, answering inside Slack in {channel}. "
        "Be concise; use Markdown that reads well in Slack."
    )
    budget_tz: str = "UTC"  # the calendar of daily and monthly budgets (docs/spend.md)
    budget_alert_percent: int = Field(80, ge=1, le=99)
    # The sweep closes records in flight longer than ANSWER_TIMEOUT_SECONDS + SWEEP_MARGIN_SECONDS, every
    # SWEEP_INTERVAL_SECONDS (scheduler leader only) and at start-up.
    sweep_margin_seconds: float = Field(120.0, ge=0)
    sweep_interval_seconds: float = Field(180.0, gt=0)
    # each process's own lease: renewed every sixth of it; once lapsed, any live process closes its answers
    process_lease_seconds: float = Field(30.0, gt=0)
    context_token_budget: int = Field(24_000, ge=1_000)
    answer_timeout_seconds: float = Field(300.0, gt=0)
    user_cache_seconds: float = Field(300.0, ge=0)

    @field_validator("slack_bot_token", "slack_signing_secret", "slack_app_token", "anthropic_api_key",
                     "anthropic_admin_key", "anthropic_base_url", "reminder_channel", "admin_alert_channel",
                     "metrics_token",
                     mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and is_placeholder(value) else value

    @field_validator("slack_bot_token", "slack_app_token", "anthropic_api_key")
    @classmethod
    def _secret_shape(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        prefixes = SECRET_PREFIXES[str(info.field_name)]
        if value is not None and not value.get_secret_value().strip().startswith(prefixes):
            # never echo the value: it is a secret, perhaps another one pasted into the wrong variable
            raise ValueError(f"it does not start with {' or '.join(prefixes)}")
        return value

    @field_validator("database_url")
    @classmethod
    def _valid_database_url(cls, value: str) -> str:
        try:
            backend = make_url(value).get_backend_name()
        except ArgumentError:
            raise ValueError("it is not a database URL") from None
        if backend not in ("sqlite", "postgresql", "postgres"):
            raise ValueError(f"{backend} is not supported (SQLite or PostgreSQL)")
        return value

    @field_validator("bootstrap_owners", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("default_role", "secret_policy", mode="before")
    @classmethod
    def _lower_role(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("audit_retention_days", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("reminder_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from bot.cron import cron_trigger  # crontab weekdays (0 = Sunday), unlike from_crontab

        cron_trigger(value, "UTC")
        return value

    @field_validator("reminder_tz", "budget_tz")
    @classmethod
    def _valid_tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level")
    @classmethod
    def _valid_level(cls, value: str) -> str:
        value = value.upper()
        if value not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError(f"unknown level {value!r}")
        return value

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    @field_validator("model_prices", mode="before")
    @classmethod
    def _valid_prices(cls, value: Any) -> dict[str, tuple[Price, ...]]:
        if not isinstance(value, dict):
            raise ValueError("must be a JSON object of prices by model ID or family")
        return {str(name).strip().lower(): override_price(str(name), price) for name, price in value.items()}

    @property
    def prices(self) -> PriceTable:
        """Prices by model ID and by family: the price source's table, with MODEL_PRICES on top (built once)."""
        if self._prices is None:
            aliases = self.models.aliases  # "haiku" prices the family and the model MODEL_HAIKU names
            overrides = {target: periods for name, periods in self.model_prices.items()
                         if (target := aliases.get(name)) and target not in self.model_prices}
            self._prices = with_overrides(list_prices(), self.model_prices | overrides)
        return self._prices

    @property
    def budget_zone(self) -> ZoneInfo:
        return ZoneInfo(self.budget_tz)

    @property
    def models(self) -> ModelCatalog:
        return ModelCatalog(haiku=self.model_haiku, sonnet=self.model_sonnet, opus=self.model_opus)

    @property
    def log_level_number(self) -> int:
        return logging.getLevelName(self.log_level)

    def secret_values(self) -> list[str]:
        """Every secret this process knows, for log redaction."""
        secrets = (self.slack_bot_token, self.slack_signing_secret, self.slack_app_token, self.anthropic_api_key,
                   self.anthropic_admin_key, self.metrics_token)
        return [s.get_secret_value() for s in secrets if s is not None]

    def require_workspace_key(self) -> None:
        """Raise StartupRefused when ANTHROPIC_API_KEY cannot ask Claude: the test `keys add` applies (an Admin API
        key passes the ``sk-ant-`` prefix check, and Anthropic refuses every request made with it)."""
        key = self.anthropic_api_key.get_secret_value() if self.anthropic_api_key is not None else None
        if key is None or is_api_key(key):
            return
        if key.startswith("sk-ant-admin"):
            raise StartupRefused("ANTHROPIC_API_KEY holds an Admin API key (sk-ant-admin…), which cannot ask Claude: "
                                 "put a workspace API key (sk-ant-api…) there, and the Admin key in "
                                 "ANTHROPIC_ADMIN_KEY.")
        raise StartupRefused("ANTHROPIC_API_KEY is not a workspace API key (sk-ant-api…): create one at "
                             "console.anthropic.com → API keys.")

    def require_serving(self) -> None:
        """Raise ConfigError naming every setting `serve` cannot start without."""
        def value(secret: SecretStr | None) -> str | None:
            return secret.get_secret_value() if secret is not None else None

        problems = serving_gaps(bot_token=value(self.slack_bot_token), signing_secret=value(self.slack_signing_secret),
                                app_token=value(self.slack_app_token), api_key=value(self.anthropic_api_key))
        if problems:
            raise SettingsProblems(problems)


def load_settings(env_file: str | Path | None = ".env", **overrides: object) -> Settings:
    """Read the environment (and ``.env``, which also fills os.environ for `env:VAR` API keys). A relative SQLite
    path is made absolute against the directory holding ``.env``, else the current directory."""
    found = bool(env_file) and Path(env_file).is_file()  # type: ignore[arg-type]
    if found:
        load_dotenv(env_file, override=False)
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
        base = Path(env_file).resolve().parent if found else Path.cwd()  # type: ignore[arg-type]
        settings.database_url = absolute_sqlite_url(settings.database_url, base)
        return settings
    except ValidationError as exc:
        raise SettingsProblems(_problems(exc)) from None
    except SettingsError as exc:  # a complex value (JSON) that does not parse
        match = re.search(r'field "(\w+)"', str(exc))
        name = match.group(1).upper() if match else "setting"
        how = HOW_TO_GET.get(name, "valid JSON")
        raise SettingsProblems([SettingProblem(name, False, f"it is not valid JSON (expected {how})")]) from None


def absolute_sqlite_url(url: str, base: Path) -> str:
    """``sqlite:///claude_gate.db`` → ``sqlite:////<base>/claude_gate.db``; other URLs, absolute paths, in-memory
    and ``file:`` URI databases as they are."""
    path = sqlite_file(url)
    if path is None or path.is_absolute():
        return url
    return make_url(url).set(database=str(base / path)).render_as_string(hide_password=False)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases, in-memory and ``file:`` URI ones)."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


# pydantic's error types → what an operator reads (the input is quoted; the rest comes from the error's context)
PLAIN_ERRORS = {
    "int_parsing": "{input!r} is not a whole number",
    "int_from_float": "{input!r} is not a whole number",
    "float_parsing": "{input!r} is not a number",
    "bool_parsing": "{input!r} is not true or false (true/false, yes/no, on/off or 1/0)",
    "greater_than": "{input!r} is too small: it must be above {gt}",
    "greater_than_equal": "{input!r} is too small: it must be at least {ge}",
    "less_than": "{input!r} is too large: it must be below {lt}",
    "less_than_equal": "{input!r} is too large: it must be at most {le}",
    "string_too_short": "it must not be empty",
    "url_parsing": "{input!r} is not a URL",
}


def _plain_message(error: Any) -> str:
    """One pydantic error in an operator's words, naming the value given and what is accepted."""
    template = PLAIN_ERRORS.get(str(error["type"]))
    if template is not None:
        try:
            return template.format(input=error.get("input"), **(error.get("ctx") or {}))
        except (KeyError, IndexError):
            pass
    return str(error["msg"]).removeprefix("Value error, ")


def _problems(exc: ValidationError) -> list[SettingProblem]:
    problems: dict[str, SettingProblem] = {}
    for error in exc.errors():
        name = str(error["loc"][0]).upper() if error["loc"] else "setting"
        if name in problems:  # one line per setting (a union type reports each alternative)
            continue
        how = HOW_TO_GET.get(name)
        if error["type"] == "enum" and how:  # pydantic's message lists the choices HOW_TO_GET names too
            message = f"{error['input']!r} is not accepted"
        else:
            message = _plain_message(error)
        problems[name] = SettingProblem(name, False, message + (f" (expected {how})" if how else ""))
    return list(problems.values())
