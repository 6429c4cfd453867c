"""Every setting of Claude Gate in one typed place (PRODUCT §5), validated at start."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import load_dotenv
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from bot.domain.errors import ConfigError as ConfigError
from bot.domain.models import ModelCatalog, default_model_ids
from bot.domain.pricing import DEFAULT_PRICES, Price
from bot.domain.roles import Role

_DEFAULT_MODELS = default_model_ids()

SETUP_HINT = (
    "create the Slack app from the manifest that `claude-gate manifest` prints "
    "(api.slack.com/apps → Create New App → From a manifest), install it, then put the values in .env"
)

# How to get each setting, for the one-line start-up error.
HOW_TO_GET: dict[str, str] = {
    "SLACK_BOT_TOKEN": "the Bot User OAuth Token (xoxb-…) from the app's OAuth & Permissions page",
    "SLACK_SIGNING_SECRET": "the Signing Secret from the app's Basic Information page "
    "(or set SLACK_APP_TOKEN for Socket Mode)",
    "SLACK_APP_TOKEN": "an app-level token (xapp-…) with connections:write, from Basic Information",
    "ANTHROPIC_API_KEY": "an API key (sk-ant-…) from console.anthropic.com → API keys",
    "DATABASE_URL": "a SQLAlchemy URL such as sqlite:///claude_gate.db or postgresql://user@host/db",
    "DEFAULT_ROLE": f"one of {', '.join(Role)}",
    "REMINDER_CRON": "five crontab fields, e.g. '0 9 * * 1-5'",
    "REMINDER_TZ": "an IANA time zone such as UTC or Europe/Berlin",
    "LOG_LEVEL": "one of DEBUG, INFO, WARNING, ERROR",
    "MODEL_PRICES": 'JSON dollars per million tokens by family, e.g. {"opus": [5, 25]}',
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

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
    log_prompts: bool = False
    log_level: str = "INFO"

    model_haiku: str = _DEFAULT_MODELS["haiku"]
    model_sonnet: str = _DEFAULT_MODELS["sonnet"]
    model_opus: str = _DEFAULT_MODELS["opus"]

    # Estimated-cost table override, US dollars per million tokens: {"opus": [5, 25], ...} (JSON)
    model_prices: dict[str, tuple[float, float]] = {}

    system_prompt: str = (
        "You are Claude, answering inside Slack for {user_name} in {channel}. "
        "Be concise; use Markdown that reads well in Slack."
    )
    context_token_budget: int = Field(24_000, ge=1_000)
    answer_timeout_seconds: float = Field(300.0, gt=0)
    user_cache_seconds: float = Field(300.0, ge=0)

    @field_validator("bootstrap_owners", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("default_role", mode="before")
    @classmethod
    def _lower_role(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("reminder_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from bot.domain.cron import cron_trigger  # crontab weekdays (0 = Sunday), unlike from_crontab

        cron_trigger(value, "UTC")
        return value

    @field_validator("reminder_tz")
    @classmethod
    def _valid_tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

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

    @property
    def prices(self) -> dict[str, Price]:
        """The price table per model family: the defaults, with MODEL_PRICES on top."""
        return DEFAULT_PRICES | {family: Price(*pair) for family, pair in self.model_prices.items()}

    @property
    def models(self) -> ModelCatalog:
        return ModelCatalog(haiku=self.model_haiku, sonnet=self.model_sonnet, opus=self.model_opus)

    @property
    def log_level_number(self) -> int:
        return logging.getLevelName(self.log_level)

    def secret_values(self) -> list[str]:
        """Every secret this process knows, for log redaction."""
        secrets = (self.slack_bot_token, self.slack_signing_secret, self.slack_app_token, self.anthropic_api_key,
                   self.anthropic_admin_key)
        return [s.get_secret_value() for s in secrets if s is not None]

    def require_serving(self) -> None:
        """Raise ConfigError naming the first setting `serve` cannot start without."""
        missing = []
        if self.slack_bot_token is None:
            missing.append("SLACK_BOT_TOKEN")
        if not self.socket_mode and self.slack_signing_secret is None:
            missing.append("SLACK_SIGNING_SECRET")
        if self.anthropic_api_key is None:
            missing.append("ANTHROPIC_API_KEY")
        if missing:
            names = " and ".join(missing)
            how = "; ".join(f"{name} is {HOW_TO_GET[name]}" for name in missing)
            raise ConfigError(f"Missing setting {names}: {how}. To get them, {SETUP_HINT}.")


def load_settings(env_file: str | Path | None = ".env", **overrides: object) -> Settings:
    """Read the environment (and ``.env``, which also fills os.environ for `env:VAR` API keys)."""
    if env_file and Path(env_file).is_file():
        load_dotenv(env_file, override=False)
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
    except SettingsError as exc:  # a complex value (JSON) that does not parse
        match = re.search(r'field "(\w+)"', str(exc))
        name = match.group(1).upper() if match else "setting"
        how = HOW_TO_GET.get(name, "valid JSON")
        raise ConfigError(f"Invalid setting {name}: it is not valid JSON (expected {how}).") from None


def _one_line(exc: ValidationError) -> str:
    error = exc.errors()[0]
    name = str(error["loc"][0]).upper() if error["loc"] else "setting"
    message = str(error["msg"]).removeprefix("Value error, ")
    how = HOW_TO_GET.get(name)
    return f"Invalid setting {name}: {message}" + (f" (expected {how})" if how else "") + "."
