"""Enterprise Grid: the enterprise decides who is a member; Slack Connect compares organisations; W… user IDs
work wherever U… IDs do. Events arrive Grid-shaped (enterprise_id in the envelope and the authorizations)."""

from __future__ import annotations

import pytest

from bot.domain.requests import Requester
from bot.domain.roles import Role
from bot.slack.directory import Installation, requester_from_profile
from tests.support.harness import Harness, eventually

GRID = Installation(team_id="T0001", enterprise_id="E0001", bot_user_id="UBOT", bot_id="B0001")
SINGLE = Installation(team_id="T0001", enterprise_id=None, bot_user_id="UBOT", bot_id="B0001")


def profile(user_id: str, team: str, enterprise: str | None = None) -> dict:
    user: dict = {"id": user_id, "team_id": team, "profile": {}}
    if enterprise:
        user["enterprise_user"] = {"id": user_id, "enterprise_id": enterprise, "teams": [team]}
    return user


@pytest.mark.parametrize(("home", "user", "external"), [
    (GRID, profile("U1", "T0001", "E0001"), False),  # the installing workspace
    (GRID, profile("W2", "T0002", "E0001"), False),  # another workspace of the same organisation
    (GRID, profile("W3", "T0001", "E0999"), True),  # another Grid organisation
    (GRID, profile("U4", "T0999"), True),  # an organisation without Grid
    (SINGLE, profile("U5", "T0001"), False),
    (SINGLE, profile("W6", "T0002", "E0001"), True),  # a Grid organisation's user in a Slack Connect channel
    (SINGLE, {"id": "U7", "profile": {}}, True),  # nobody can tell: external
])
def test_slack_connect_compares_organisations(home: Installation, user: dict, external: bool) -> None:
    assert requester_from_profile(user, home).is_external is external


async def test_a_w_user_of_a_sister_workspace_is_answered_and_administered_like_a_u_user(harness: Harness) -> None:
    harness.slack.enterprise_id = "E0001"
    harness.slack.add_user("UOWNER", enterprise_id="E0001")
    harness.slack.add_user("W0SISTER", team_id="T0002", enterprise_id="E0001", name="sam")
    await harness.grant("UOWNER", Role.OWNER)
    answer = await harness.command("UOWNER", "/claude-admin", "grant <@W0SISTER|sam> power")
    assert "W0SISTER" in str(answer) and ":warning:" not in answer["text"]
    await harness.mention("W0SISTER", "--model opus hello from the sister workspace")
    (record,) = await harness.settled_records(1)
    assert (record.slack_user_id, record.role, record.outcome) == ("W0SISTER", "power", "ok")
    assert record.team_id == "T0002"
    (stream,) = harness.slack.streams.values()
    assert stream["recipient_user_id"] == "W0SISTER" and stream["recipient_team_id"] == "T0002"
    await harness.dm("W0SISTER", "and in a DM")
    await harness.settled_records(2)
    await eventually(lambda: harness.slack.posted_texts("DW0SISTER"))


async def test_a_user_of_another_grid_organisation_is_external(harness: Harness) -> None:
    harness.slack.enterprise_id = "E0001"
    harness.slack.add_user("W0OTHER", team_id="T0001", enterprise_id="E0999")
    await harness.grant("W0OTHER", Role.POWER)
    await harness.mention("W0OTHER", "hi")
    (record,) = await harness.settled_records(1)
    assert record.refusal_reason == "external_user"


def users_info_user(user_id: str, team_id: str, **fields: object) -> dict:
    """A ``user`` of users.info as Slack's docs print it (profile trimmed), plus ``fields``."""
    return {"id": user_id, "team_id": team_id, "name": "sam", "deleted": False, "real_name": "Sam Doe",
            "tz": "Europe/London", "tz_label": "British Summer Time", "tz_offset": 3600,
            "profile": {"real_name": "Sam Doe", "display_name": "sam", "email": "sam@example.com", "team": team_id},
            "is_admin": False, "is_owner": False, "is_primary_owner": False, "is_restricted": False,
            "is_ultra_restricted": False, "is_bot": False, "is_app_user": False, "updated": 1502138686, **fields}


def enterprise_user(user_id: str, enterprise_id: str, teams: list[str]) -> dict:
    return {"enterprise_user": {"id": user_id, "enterprise_id": enterprise_id, "enterprise_name": "Acme",
                                "is_admin": False, "is_owner": False, "is_primary_owner": False, "teams": teams}}


@pytest.mark.parametrize(("user", "external"), [
    # Grid profiles of the installing organisation, with and without the enterprise_user block
    (users_info_user("W1", "T0001", **enterprise_user("W1", "E0001", ["T0001", "T0002"])), False),
    (users_info_user("W2", "T0001"), False),  # no enterprise_user block: the installing workspace decides
    (users_info_user("W3", "T0002", enterprise_id="E0001"), False),  # only the top-level enterprise_id
    (users_info_user("W4", "E0001"), False),  # an org-level user: team_id is the enterprise
    (users_info_user("W5", "T0002"), True),  # a sister workspace nobody can tell from another organisation
    # Slack Connect: another organisation's people, with or without Grid
    (users_info_user("W6", "T0999", **enterprise_user("W6", "E0999", ["T0999"])), True),
    (users_info_user("U7", "T0999", is_stranger=True), True),
    (users_info_user("W8", "T0001", is_stranger=True), True),
])
def test_grid_membership_of_the_shapes_slack_prints(user: dict, external: bool) -> None:
    assert requester_from_profile(user, GRID).is_external is external


async def test_a_grid_member_whose_profile_has_no_enterprise_block_is_answered(harness: Harness) -> None:
    """The real app on a Grid install: users.info answers without ``enterprise_user`` (as Slack does for some
    workspace-level profiles); the person is of the installing workspace, so a member."""
    harness.slack.enterprise_id = "E0001"
    person = harness.slack.add_user("W0GRID", enterprise_id="E0001")
    del person["enterprise_user"]
    await harness.grant("W0GRID", Role.USER)
    await harness.mention("W0GRID", "hello from the installing workspace")
    (record,) = await harness.settled_records(1)
    assert (record.outcome, record.refusal_reason) == ("ok", None)


def test_requester_keeps_the_w_id() -> None:
    assert requester_from_profile(profile("W2", "T0002", "E0001"), GRID) == Requester(
        user_id="W2", team_id="T0002", name="", known=True, is_external=False, is_guest=False, is_bot=False,
        email=None)
