"""Access requests in Slack: the refusal's "Request access" button, the form, and the approvers' buttons."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.access_requests import APPROVAL_CHOICES
from bot.domain.roles import Role
from bot.services.access.requests import DecisionKind, FormState
from bot.slack.access_requests import (
    DECISION_ACTION,
    FORM_CALLBACK,
    OPEN_ACTION,
    REASON_BLOCK,
    ROLE_BLOCK,
    decision_from,
    form_values,
    notice_view,
    request_form,
    request_id_from,
)
from bot.slack.directory import LazyRequester

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

SORRY = ":warning: Something went wrong on my side. Please try again."


def register(runtime: Runtime) -> None:
    listener = AccessRequestListener(runtime)
    runtime.bolt.action(OPEN_ACTION)(listener.on_open)
    runtime.bolt.view(FORM_CALLBACK)(listener.on_submit)
    runtime.bolt.action(DECISION_ACTION)(listener.on_decision)


class AccessRequestListener:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def on_open(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any],
                      client: AsyncWebClient, requester: LazyRequester) -> None:
        await ack()
        asked_for = Role.parse(str(action.get("value") or ""))
        form = await self.runtime.access_requests.form(await requester.resolve(), asked_for)
        if form.state is FormState.OPEN:
            assert form.preset is not None
            view = request_form(form.roles, form.preset)
        else:
            view = notice_view("Request pending" if form.state is FormState.PENDING else "Request access",
                               form.message)
        await client.views_open(trigger_id=body["trigger_id"], view=view)

    async def on_submit(self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any],
                        requester: LazyRequester) -> None:
        """A modal's errors must be in its ack: this fallback stays here, not in @app.error."""
        user_id = requester.user_id
        try:
            role, reason = form_values(view)
            submission = await self.runtime.access_requests.submit(await requester.resolve(), role, reason)
        except Exception:
            log.exception("access request from %s failed", user_id)
            await ack(response_action="errors", errors={REASON_BLOCK: "Something went wrong on my side. Try again."})
            return
        if submission.request is None:
            block = ROLE_BLOCK if submission.field == "role" else REASON_BLOCK
            await ack(response_action="errors", errors={block: submission.error or "Not sent."})
            return
        request = submission.request
        await ack(response_action="update", view=notice_view(
            "Request sent", f":white_check_mark: Your request #{request.id} for *{request.role}* was sent to the "
            "people who may grant it. You will get a DM when someone decides."))
        await self.runtime.access_requests.announce(request)

    async def on_decision(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any],
                          client: AsyncWebClient, requester: LazyRequester) -> None:
        await ack()
        user_id = requester.user_id
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or user_id
        try:
            decision = decision_from(str(action.get("action_id") or ""))
            request_id = request_id_from(action.get("value"))
            if decision is None or request_id is None:
                log.warning("access request action from %s with unexpected %r/%r", user_id, action.get("action_id"),
                            action.get("value"))
                text = "I cannot find that access request."
            else:
                approve, choice = decision
                outcome = await self.runtime.access_requests.decide(
                    await requester.resolve(), request_id, approve=approve,
                    duration=APPROVAL_CHOICES.get(choice or "permanent"))
                icon = {DecisionKind.DECIDED: ":white_check_mark:", DecisionKind.REFUSED: ":no_entry:"}.get(
                    outcome.kind, ":information_source:")
                text = f"{icon} {outcome.message}"
        except Exception:
            log.exception("access request decision by %s failed", user_id)
            text = SORRY
        try:
            await client.chat_postEphemeral(channel=channel, user=user_id, text=text)
        except Exception:
            log.warning("could not tell %s about their decision", user_id, exc_info=True)
