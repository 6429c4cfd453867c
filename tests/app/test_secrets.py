"""SECRET_POLICY through the real app: block, redact and off, the thread's history, admin alerts, and no trace of
the secret in what reached the fake Anthropic, the log or the database."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from bot.domain.roles import Role
from tests.support.harness import Harness, eventually

GITHUB = "gh" + "p_" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa98"  # assembled: no whole token in the source
AWS = "AK" + "IA" + "Q3EGUFZK7XMPL4RT"


def everything_stored(snapshot: dict) -> str:
    return json.dumps(snapshot, default=str)


async def assert_no_trace(harness: Harness, caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    requests = json.dumps(harness.anthropic.requests, default=str)
    stored = everything_stored(await harness.table_snapshot())
    logged = caplog.text + "".join(str(record.args) for record in caplog.records)
    for secret in secrets:
        assert secret not in requests, "the secret reached Anthropic"
        assert secret not in stored, "the secret reached the database"
        assert secret not in logged, "the secret reached the log"


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="bot")
    caplog.set_level(logging.INFO)
    return caplog


async def people(harness: Harness) -> Harness:
    for user, role in (("UOWNER", Role.OWNER), ("UOWNER2", Role.OWNER), ("UUSER", Role.USER), ("UOTHER", Role.USER)):
        harness.slack.add_user(user, name=user.lower())
        await harness.grant(user, role)
    harness.slack.add_user("UVIEW", name="uview")
    return harness


async def test_block_refuses_names_the_kind_and_alerts_admins_once_an_hour(
        harness_factory, debug_log: pytest.LogCaptureFixture) -> None:
    harness = await people(await harness_factory(log_prompts=True, admin_alert_channel="CALERTS"))
    await harness.mention("UUSER", f"why does `git push` fail with token {GITHUB}?", channel="C0100")
    (record,) = await harness.settled_records(1)
    assert (record.outcome, record.refusal_reason) == ("refused", "secret")
    assert record.prompt is not None and "[redacted: GitHub token]" in record.prompt  # LOG_PROMPTS keeps no secret
    (line,) = await harness.told("UUSER")
    assert "contains a GitHub token" in line["text"] and "Rotate it now" in line["text"]
    assert harness.anthropic.message_requests() == []

    alert = (await eventually(lambda: harness.slack.calls_to("chat.postMessage")))[0]
    assert alert["channel"] == "CALERTS" and "<@UUSER>" in alert["text"] and "a GitHub token" in alert["text"]
    assert "<#C0100>" in alert["text"]

    await harness.mention("UUSER", f"again {AWS}", channel="C0100")
    await harness.settled_records(2)
    await harness.told("UUSER", 2)
    harness.clock.advance(timedelta(minutes=61).total_seconds())
    await harness.mention("UUSER", f"and again {GITHUB}", channel="C0100")
    await harness.settled_records(3)
    await harness.told("UUSER", 3)
    alerts = await eventually(lambda: len(found := harness.slack.calls_to("chat.postMessage")) >= 2 and found)
    assert len(alerts) == 2  # the second paste within the hour was not alerted
    await assert_no_trace(harness, debug_log, GITHUB, AWS)


async def test_without_an_alert_channel_each_owner_gets_a_dm(harness_factory) -> None:
    harness = await people(await harness_factory())
    await harness.dm("UUSER", f"here is my key {AWS} is it valid?")
    await harness.settled_records(1)
    dms = await eventually(lambda: len(found := harness.slack.calls_to("chat.postMessage")) >= 2 and found)
    assert {dm["channel"] for dm in dms} == {"UOWNER", "UOWNER2"}
    assert all(AWS not in dm["text"] and "an AWS access key" in dm["text"] for dm in dms)


async def test_block_redacts_someone_elses_secret_in_the_history(harness_factory,
                                                                debug_log: pytest.LogCaptureFixture) -> None:
    harness = await people(await harness_factory(log_prompts=True))
    root = harness.slack.next_ts()
    harness.slack.add_message("C0100", root, f"deploy creds: {AWS} (oops)", user="UOTHER")
    await harness.mention("UUSER", "what did the message above say?", channel="C0100", thread_ts=root)
    (record,) = await harness.settled_records(1)
    assert record.outcome == "ok"  # not held against the asker
    sent = json.dumps(harness.anthropic.last_body()["messages"])
    assert "[redacted: AWS access key]" in sent and "what did the message above say?" in sent
    await assert_no_trace(harness, debug_log, AWS)


async def test_redact_sends_the_message_with_the_secret_replaced(harness_factory,
                                                                debug_log: pytest.LogCaptureFixture) -> None:
    harness = await people(await harness_factory(secret_policy="redact", log_prompts=True))
    await harness.mention("UUSER", f"is {GITHUB} a classic or fine-grained token?", channel="C0100")
    (record,) = await harness.settled_records(1)
    assert record.outcome == "ok"
    last = harness.anthropic.last_body()["messages"][-1]["content"]
    assert last == "is [redacted: GitHub token] a classic or fine-grained token?"
    assert record.prompt == last
    assert harness.ephemerals_for("UUSER") == []
    assert not any("rotating_light" in call.get("text", "") for call in harness.slack.calls_to("chat.postMessage"))
    await assert_no_trace(harness, debug_log, GITHUB)


async def test_off_sends_text_as_typed(harness_factory) -> None:
    harness = await people(await harness_factory(secret_policy="off"))
    await harness.mention("UUSER", f"check {AWS}", channel="C0100")
    (record,) = await harness.settled_records(1)
    assert record.outcome == "ok" and AWS in harness.anthropic.last_body()["messages"][-1]["content"]


async def test_the_role_is_judged_before_the_secret(harness_factory) -> None:
    """In the gate's order (docs/architecture.md): a viewer is told about the role, never about a secret."""
    harness = await people(await harness_factory())
    await harness.mention("UVIEW", f"check {AWS}", channel="C0100")
    (record,) = await harness.settled_records(1)
    assert record.refusal_reason == "role_cannot_chat"


async def test_a_channel_prompt_holding_a_secret_is_not_saved(harness_factory) -> None:
    harness = await people(await harness_factory())
    before = await harness.table_snapshot()
    answer = await harness.command("UOWNER", "/claude-admin", f"channel C0100 prompt Use the key {AWS} for S3")
    assert "contains an AWS access key" in answer["text"] and AWS not in answer["text"]
    assert await harness.table_snapshot() == before


def test_the_setting_accepts_three_policies_only() -> None:
    from bot.config import ConfigError, load_settings

    assert load_settings(env_file=None, secret_policy="REDACT").secret_policy == "redact"
    with pytest.raises(ConfigError, match="SECRET_POLICY"):
        load_settings(env_file=None, secret_policy="maybe")


async def test_a_text_file_holding_a_secret_reaches_claude_redacted(harness_factory,
                                                                    debug_log: pytest.LogCaptureFixture) -> None:
    from tests.app.test_files import mention_with_files

    harness = await people(await harness_factory(secret_policy="redact"))
    files = [harness.slack.add_file("F1", "deploy.env", "text/plain", f"AWS_KEY={AWS}\nREGION=eu-west-1\n".encode())]
    await mention_with_files(harness, "UUSER", "what region is this?", files)
    (record,) = await harness.settled_records(1)
    assert record.outcome == "ok"
    sent = json.dumps(harness.anthropic.last_body()["messages"])
    assert "[redacted: AWS access key]" in sent and "REGION=eu-west-1" in sent
    await assert_no_trace(harness, debug_log, AWS)


ANTHROPIC_KEY = "sk-ant-" + "api03-" + "Qw3rTy7UiOp9AsDfGh1JkLzXcVbNm2Lk4Jh6Gf8Ds0Ap5Oi3Uy1TrEwQaZxSwEdCvFr"
DISGUISED = [
    ("a newline after the prefix", ANTHROPIC_KEY[:13] + "\n" + ANTHROPIC_KEY[13:], "Anthropic API key"),
    ("a zero-width space inside", ANTHROPIC_KEY[:25] + "\u200b" + ANTHROPIC_KEY[25:], "Anthropic API key"),
    ("a zero-width joiner in the prefix", "sk-\u200dant-" + ANTHROPIC_KEY[7:], "Anthropic API key"),
    ("Slack italics", f"_{ANTHROPIC_KEY}_", "Anthropic API key"),
    ("AWS_SECRET without a key id", "AWS_SECRET=" + "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY", "AWS secret key"),
]


def pieces(secret: str) -> list[str]:
    """Parts of a credential's last 36 characters (past any provider prefix, which the keys' hints show), none of
    which may be found anywhere: its disguise may have split it."""
    plain = "".join(ch for ch in secret if ch.isprintable() and not ch.isspace() and ch not in "_\u200b\u200d")
    return [plain[-36:-24], plain[-24:-12], plain[-12:]]


@pytest.mark.parametrize(("how", "secret", "kind"), DISGUISED, ids=[how for how, _, _ in DISGUISED])
async def test_block_refuses_a_disguised_credential(harness_factory, debug_log: pytest.LogCaptureFixture,
                                                   how: str, secret: str, kind: str) -> None:
    harness = await people(await harness_factory(log_prompts=True))
    await harness.mention("UUSER", f"is this valid?\n{secret}\nthanks", channel="C0100")
    (record,) = await harness.settled_records(1)
    assert (record.outcome, record.refusal_reason) == ("refused", "secret")
    (line,) = await harness.told("UUSER")
    assert f"contains {'an' if kind[0] in 'AEIOU' else 'a'} {kind}" in line["text"] and "Rotate it now" in line["text"]
    assert harness.anthropic.requests == []
    assert record.prompt is not None and f"[redacted: {kind}]" in record.prompt
    await assert_no_trace(harness, debug_log, secret, *pieces(secret))


async def test_redact_sends_a_key_split_by_a_newline_wholly_redacted(harness_factory,
                                                                     debug_log: pytest.LogCaptureFixture) -> None:
    harness = await people(await harness_factory(secret_policy="redact", log_prompts=True))
    split = ANTHROPIC_KEY[:13] + "\n" + ANTHROPIC_KEY[13:30] + "\u200b" + ANTHROPIC_KEY[30:]
    await harness.mention("UUSER", f"why 401 with {split} here?", channel="C0100")
    (record,) = await harness.settled_records(1)
    assert record.outcome == "ok"
    sent = harness.anthropic.last_body()["messages"][-1]["content"]
    assert sent == "why 401 with [redacted: Anthropic API key] here?"
    await assert_no_trace(harness, debug_log, split, *pieces(split))
