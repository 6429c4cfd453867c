"""Property: any command text is answered, never raises, and changes nothing unless it parses."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.commands import ADMIN, SELF, CommandError, parse_command
from bot.domain.errors import GateError
from bot.domain.roles import Role
from bot.listeners.commands import SlashCommands
from bot.listeners.errors import user_reply
from bot.slack.mrkdwn import mrkdwn
from bot.slack.render import reply_blocks
from tests.support.harness import Harness

WORDS = ["grant", "revoke", "whois", "users", "groups", "map", "unmap", "keys", "add", "sync", "policy", "set",
         "usage", "audit", "reminders", "run", "offboard", "help", "status", "model", "models", "max_tokens",
         "rpm_limit", "daily_token_budget", "workspace", "viewer", "user", "power", "billing", "admin", "owner",
         "all", "days=3", "days=0", "n=2", "<@UOWNER>", "<@UX1|x>", "U0ZZZ", "<!subteam^S0X|@x>", "@x", "S0X",
         "env:KEY", "env:", "rotate_days=9", "haiku", "opus,sonnet", "none", "7", "-1", "=", "<", ">", "`",
         # unicode digits (str.isdigit says yes, int says no), huge numbers, control characters
         "²", "٣", "３", "𝟙", "days=²", "days=10000000", "rotate_days=٣", "9" * 5000, "1" + "0" * 40, "\x00",
         "\x1b[31m", "\u202e", "max_tokens\x00"]
TEXTS = st.one_of(
    st.lists(st.sampled_from(WORDS), max_size=6).map(" ".join),
    st.text(max_size=80),
    st.lists(st.one_of(st.sampled_from(WORDS), st.text(min_size=1, max_size=12)), max_size=5).map(" ".join),
)


def parses(command: str, text: str) -> bool:
    try:
        parse_command(command, text)
    except CommandError:
        return False
    return True


async def test_random_command_text_never_raises_and_only_valid_text_acts(harness: Harness) -> None:
    harness.slack.add_user("UOWNER")
    await harness.grant("UOWNER", Role.OWNER)
    await harness.grant("UOTHER", Role.OWNER)  # so no random revoke can hit the last-owner rule by accident
    commands = SlashCommands(harness.runtime)
    answers: list[dict[str, Any]] = []

    async def respond(**kwargs: Any) -> None:
        answers.append(kwargs)

    async def run(command: str, text: str) -> None:
        before = await harness.table_snapshot()
        answers.clear()
        listener = commands.on_admin if command == ADMIN else commands.on_self
        body = {"command": command, "text": text, "user_id": "UOWNER"}
        try:
            await listener(body, harness.runtime.directory.lazy("UOWNER"), respond)
        except GateError as exc:  # what @app.error answers (anything else fails the test)
            await respond(text=reply_blocks(user_reply(exc))[0], response_type="ephemeral")
        assert len(answers) == 1 and answers[0]["response_type"] == "ephemeral"
        assert "went wrong on my side" not in answers[0]["text"], (command, text)
        if not parses(command, text):
            assert mrkdwn(answers[0]["text"]).startswith(":warning:")
            assert await harness.table_snapshot() == before, (command, text)

    examples: list[tuple[str, str]] = []

    @settings(max_examples=300, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.sampled_from([ADMIN, SELF]), TEXTS)
    def collect(command: str, text: str) -> None:
        # pure check first: the parser itself only ever raises CommandError
        parses(command, text)
        examples.append((command, text))

    collect()
    for command, text in examples[:150]:  # then a sample of them through the real services and database
        await run(command, text)
