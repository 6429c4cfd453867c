"""Work before the gate (): nothing beyond the asker is looked up before the gate's first phase
(account, role, channel, model) lets them in; mention lookups are bounded and cached, misses included."""

from __future__ import annotations

from sqlalchemy import update

from bot.domain.roles import Role
from bot.slack.threads import MAX_MENTIONS_LOOKED_UP
from bot.store.models import RolePolicyRow
from tests.support.fakes.anthropic import content_text
from tests.support.harness import Harness, eventually

MENTIONS = " ".join(f"<@U9{n:07d}>" for n in range(400))  # 400 people, none of them known to Slack


async def test_a_refused_viewers_400_mentions_cost_one_users_info(harness: Harness) -> None:
    harness.slack.add_user("UVIEW")  # DEFAULT_ROLE viewer: refused by role
    await harness.mention("UVIEW", f"hello {MENTIONS}")
    await harness.told("UVIEW")
    (record,) = await harness.settled_records(1)
    assert record.refusal_reason == "role_cannot_chat"
    assert [c["user"] for c in harness.slack.calls_to("users.info")] == ["UVIEW"]


async def test_a_refused_model_is_decided_before_any_mention_is_looked_up(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)  # haiku only
    await harness.mention("U1", f"--model opus {MENTIONS}")
    await harness.told("U1")
    assert [c["user"] for c in harness.slack.calls_to("users.info")] == ["U1"]


async def test_an_admitted_message_looks_up_at_most_20_mentions_and_remembers_misses(harness: Harness) -> None:
    harness.slack.add_user("U1")
    harness.slack.add_user("U2", name="bea")
    await harness.grant("U1", Role.USER)
    await harness.mention("U1", f"ask <@U2> about {MENTIONS}")
    await harness.settled_records(1)
    looked_up = [c["user"] for c in harness.slack.calls_to("users.info")]
    assert looked_up[0] == "U1" and len(looked_up) == 1 + MAX_MENTIONS_LOOKED_UP
    asked = content_text(harness.anthropic.last_body()["messages"][-1]["content"])  # long: a cache breakpoint
    assert asked.startswith("ask @bea about @U90000000") and "U90000399" in asked  # the rest read as IDs
    await harness.mention("U1", f"ask <@U2> about {MENTIONS}")  # not asked about twice within a minute, misses too
    await harness.settled_records(2)
    await eventually(lambda: len(harness.slack.posted_texts("C0001")) == 2)
    assert len(harness.slack.calls_to("users.info")) == len(looked_up)


async def _thread_with_files(harness: Harness) -> tuple[str, list[dict]]:
    """A thread whose root shared a file, and a file of the question itself."""
    root = harness.slack.next_ts()
    earlier = harness.slack.add_file("F1", "earlier.txt", "text/plain", b"earlier notes")
    harness.slack.add_message("C0001", root, "notes", user="U1", files=[earlier])
    return root, [harness.slack.add_file("F2", "now.txt", "text/plain", b"new notes")]


async def _ask_in_thread(harness: Harness, root: str, files: list[dict]) -> None:
    ts = harness.slack.next_ts()
    text = f"<@{harness.slack.bot_user_id}> and these?"
    harness.slack.add_message("C0001", ts, text, user="U1", thread_ts=root, files=files)
    await harness.send_event({"type": "app_mention", "user": "U1", "text": text, "ts": ts, "channel": "C0001",
                              "event_ts": ts, "thread_ts": root, "files": files})


async def test_a_message_the_rpm_limit_refuses_fetches_no_history_and_no_file(harness: Harness) -> None:
    harness.slack.add_user("U1")
    await harness.grant("U1", Role.USER)
    async with harness.sessions.begin() as session:
        await session.execute(update(RolePolicyRow).where(RolePolicyRow.role == "user").values(rpm_limit=1))
    await harness.mention("U1", "first")
    await harness.settled_records(1)
    root, files = await _thread_with_files(harness)
    await _ask_in_thread(harness, root, files)
    (_, refused) = await harness.settled_records(2)
    assert refused.refusal_reason == "rate_limited"
    assert harness.slack.file_downloads == [] and harness.slack.calls_to("conversations.replies") == []
    assert len(harness.anthropic.message_requests()) == 1


async def test_a_message_its_budget_refuses_fetches_no_history_and_no_file(harness: Harness) -> None:
    for user, role in (("UADMIN", Role.ADMIN), ("U1", Role.USER)):
        harness.slack.add_user(user)
        await harness.grant(user, role)
    await harness.command("UADMIN", "/claude-admin", "budget set <@U1> daily 0.000001")
    root, files = await _thread_with_files(harness)
    await _ask_in_thread(harness, root, files)
    (refused,) = await harness.settled_records(1)
    assert refused.refusal_reason == "budget_exhausted"
    assert harness.slack.file_downloads == [] and harness.slack.calls_to("conversations.replies") == []
    (told,) = await harness.told("U1")
    assert "does not fit your daily budget" in str(told)


LOOKED_UP_CHANNEL = {"conversations.info", "conversations.members", "conversations.history", "conversations.replies"}


async def asked_about_the_channel_in_view(harness: Harness, text: str, *, setting: str | None) -> list[tuple]:
    """U1 (role user) looks at C0042, where both are members, and DMs ``text``; an admin first set ``setting`` on
    C0042. Returns the Slack calls made from the DM on (method, params)."""
    harness.slack.add_user("U1", name="ana")
    harness.slack.add_user("UADMIN", name="adm")
    await harness.grant("U1", Role.USER)
    await harness.grant("UADMIN", Role.ADMIN)
    harness.slack.members["C0042"] = ["U1", "UBOT"]
    harness.slack.add_message("C0042", harness.slack.next_ts(), "The release moves to Friday.", user="U1")
    if setting:
        answer = await harness.command("UADMIN", "/claude-admin", f"channel C0042 {setting}")
        assert "C0042" in answer["text"], answer["text"]
    await harness.view_channel("U1", "C0042")
    mark = len(harness.slack.calls)
    await harness.dm("U1", text)
    (record,) = await harness.settled_records(1)
    if record.outcome == "refused":
        await harness.told("U1")  # the refusal's line, in the DM
    return harness.slack.calls[mark:]


async def test_a_channel_switched_off_is_refused_before_it_is_looked_at(harness: Harness) -> None:
    calls = await asked_about_the_channel_in_view(harness, "Summarise this channel", setting="off")
    (record,) = await harness.records()
    assert (record.refusal_reason, record.channel_id) == ("channel_off", "C0042")
    assert not LOOKED_UP_CHANNEL & {name for name, _ in calls}, calls
    assert all(params.get("user") == "U1" for name, params in calls if name == "users.info")
    assert harness.anthropic.requests == []


async def test_a_channel_for_other_roles_is_refused_before_it_is_looked_at(harness: Harness) -> None:
    calls = await asked_about_the_channel_in_view(harness, "Summarise this channel", setting="roles power,admin")
    (record,) = await harness.records()
    assert (record.refusal_reason, record.channel_id) == ("channel_role", "C0042")
    assert not LOOKED_UP_CHANNEL & {name for name, _ in calls}, calls
    assert all(params.get("user") == "U1" for name, params in calls if name == "users.info")
    assert harness.anthropic.requests == []


async def test_a_refused_model_asking_about_the_channel_looks_nothing_up(harness: Harness) -> None:
    calls = await asked_about_the_channel_in_view(harness, "--model opus summarise this channel", setting=None)
    (record,) = await harness.records()
    assert record.refusal_reason == "model_not_allowed"
    assert not LOOKED_UP_CHANNEL & {name for name, _ in calls}, calls


async def test_an_admitted_question_about_the_channel_still_reads_it(harness: Harness) -> None:
    calls = await asked_about_the_channel_in_view(harness, "Summarise this channel", setting=None)
    (record,) = await harness.records()
    assert record.outcome == "ok" and record.channel_id == "C0042"
    names = [name for name, _ in calls]
    assert {"conversations.info", "conversations.members", "conversations.history"} <= set(names)
