"""Every setting is documented where a newcomer looks: `.env.example` and the README's configuration table.

A setting added to `Settings` without both fails here with the exact lines to add; a variable documented that
`Settings` does not read (a typo, a removed setting) fails too.
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.config import Settings

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"
README = ROOT / "README.md"

_ENV_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.MULTILINE)
_NAME = re.compile(r"`([A-Z][A-Z0-9_]+)`")


def setting_names() -> list[str]:
    return [name.upper() for name in Settings.model_fields]


def default_text(name: str) -> str:
    field = Settings.model_fields[name.lower()]
    default = field.default
    if default is None or default == [] or default == {}:
        return ""
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(getattr(default, "value", default))


def env_example_names() -> list[str]:
    return _ENV_LINE.findall(ENV_EXAMPLE.read_text())


def readme_configuration_rows() -> dict[str, str]:
    """The variables named in the first column of the table under `## Configuration`: {name: row}."""
    text = README.read_text()
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            first_column = line.split("|")[1]
            for name in _NAME.findall(first_column):
                rows[name] = line
    return rows


def test_env_example_names_every_setting() -> None:
    documented = set(env_example_names())
    missing = [name for name in setting_names() if name not in documented]
    assert not missing, "\n".join(
        [".env.example does not mention these settings of bot/config.py Settings. Add, in the section that fits:"]
        + [f"    # <what {name} does, and where to get its value>\n    # {name}={default_text(name)}"
           for name in missing])


def test_readme_configuration_table_has_every_setting() -> None:
    rows = readme_configuration_rows()
    missing = [name for name in setting_names() if name not in rows]
    assert not missing, "\n".join(
        ["README.md's table under `## Configuration` has no row for these settings of bot/config.py Settings. Add:"]
        + [f"    | `{name}` | {('`' + default_text(name) + '`') if default_text(name) else 'unset'} | <meaning> |"
           for name in missing])


def test_nothing_is_documented_that_settings_does_not_read() -> None:
    known = set(setting_names())
    stray_env = [name for name in env_example_names() if name not in known]
    stray_readme = [name for name in readme_configuration_rows() if name not in known]
    assert not stray_env, f".env.example names variables Settings does not read (typo? removed?): {stray_env}"
    assert not stray_readme, f"README's configuration table names variables Settings does not read: {stray_readme}"


def test_required_settings_are_blank_in_the_example() -> None:
    """A copied .env.example must start as 'missing', never as a placeholder that looks like a value."""
    assigned = re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", ENV_EXAMPLE.read_text(), re.MULTILINE)
    assert {name for name, _ in assigned} == {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "ANTHROPIC_API_KEY"}
    assert all(value == "" for _, value in assigned)
