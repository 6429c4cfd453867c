"""Driving access requests like Slack does: clicks (block_actions) and form submissions (view_submission), signed."""

from __future__ import annotations

import json
from typing import Any

from tests.support.fakes.signing import block_actions_payload, interactive_body, view_submission_payload
from tests.support.harness import Harness, eventually


def request_button_of(blocks: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    for block in blocks or []:
        for element in block.get("elements") or []:
            if element.get("action_id") == "access_request_open":
                return element
    return None


async def refusal_of(h: Harness, user: str, text: str = "hello", count: int = 1) -> dict[str, Any]:
    """Ask as ``user``; returns the ephemeral refusal (the ``count``-th they were shown)."""
    await h.mention(user, text)
    return (await h.told(user, count))[count - 1]


async def click_request_access(h: Harness, user: str, refusal: dict[str, Any], *, url: str | None = None
                               ) -> dict[str, Any]:
    """Press the refusal's button; returns the modal Slack opened for ``user``."""
    button = request_button_of(refusal["blocks"])
    assert button is not None, refusal
    before = len(h.slack.views_opened_for(user))
    payload = block_actions_payload(user, [dict(button, block_id="access_request")],
                                    trigger_id=h.slack.issue_trigger(user), channel_id=refusal["channel"],
                                    is_ephemeral=True)
    await post(h, payload, url)
    return (await eventually(lambda: len(views := h.slack.views_opened_for(user)) > before and views))[-1]


def form_values(role: str | None, reason: str) -> dict[str, dict[str, dict[str, Any]]]:
    values: dict[str, dict[str, dict[str, Any]]] = {
        "reason": {"reason_text": {"type": "plain_text_input", "value": reason}}}
    if role is not None:
        values["role"] = {"role_choice": {"type": "static_select", "selected_option": {
            "text": {"type": "plain_text", "text": role, "emoji": True}, "value": role}}}
    return values


async def submit_form(h: Harness, user: str, view: dict[str, Any], role: str | None, reason: str, *,
                      url: str | None = None) -> dict[str, Any]:
    """Submit the modal; returns the app's acknowledgement (response_action …)."""
    payload = view_submission_payload(user, view, form_values(role, reason), trigger_id=h.slack.issue_trigger(user))
    status, body = await post_raw(h, payload, url)
    assert status == 200, body
    return json.loads(body) if body else {}


def request_messages(h: Harness) -> list[dict[str, Any]]:
    """The approvers' copies of access requests (what they see now)."""
    return [m for m in h.slack.bot_messages() if ":raising_hand:" in (m.get("text") or "")]


def decision_buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["action_id"]: e for block in message.get("blocks") or [] if block.get("type") == "actions"
            for e in block["elements"]}


async def click_decision(h: Harness, user: str, message: dict[str, Any], action_id: str, *,
                         value: str | None = None, url: str | None = None) -> None:
    button = decision_buttons(message).get(action_id) or {
        "type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": "Approve"}}
    action = dict(button, block_id="access_request", value=value if value is not None else button.get("value"))
    payload = block_actions_payload(user, [action], trigger_id=h.slack.issue_trigger(user),
                                    channel_id=message["channel"], message={
                                        k: v for k, v in message.items() if k not in ("channel", "kind")})
    await post(h, payload, url)


async def post(h: Harness, payload: dict[str, Any], url: str | None = None) -> None:
    status, body = await post_raw(h, payload, url)
    assert status == 200, body


async def post_raw(h: Harness, payload: dict[str, Any], url: str | None = None) -> tuple[int, str]:
    if url is None:
        return await h.post_signed(interactive_body(payload))
    from tests.support.fakes.signing import sign
    from tests.support.harness import SIGNING_SECRET

    body = interactive_body(payload)
    async with h.http.post(f"{url}/slack/events", data=body.encode(), headers=sign(body, SIGNING_SECRET)) as resp:
        return resp.status, await resp.text()


def dms_to(h: Harness, user: str) -> list[str]:
    return [c["text"] for c in h.slack.calls_to("chat.postMessage") if c.get("channel") == user]


def ephemeral_texts(h: Harness, user: str) -> list[str]:
    return [c.get("text") or "" for c in h.ephemerals_for(user)]
