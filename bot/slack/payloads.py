"""Shapes of the Slack events we act on. Slack sends them well-formed; anything else is dropped unread."""

from __future__ import annotations

from typing import Any

STR, LIST_OF_STR, DICT = "str", "list[str]", "dict"

# event type → {field: (kind, required)}
EVENT_FIELDS: dict[str, dict[str, tuple[str, bool]]] = {
    "app_mention": {"user": (STR, True), "channel": (STR, True), "ts": (STR, True), "text": (STR, False),
                    "thread_ts": (STR, False), "bot_id": (STR, False), "subtype": (STR, False)},
    "message": {"channel": (STR, True), "ts": (STR, True), "user": (STR, False), "text": (STR, False),
                "thread_ts": (STR, False), "channel_type": (STR, False), "subtype": (STR, False),
                "bot_id": (STR, False)},
    "app_home_opened": {"user": (STR, True), "tab": (STR, False), "channel": (STR, False)},
    "assistant_thread_started": {"assistant_thread": (DICT, True)},
    "assistant_thread_context_changed": {"assistant_thread": (DICT, True)},
    "subteam_members_changed": {"subteam_id": (STR, True), "added_users": (LIST_OF_STR, False),
                                "removed_users": (LIST_OF_STR, False)},
    "subteam_updated": {"subteam": (DICT, True)},
}
ASSISTANT_THREAD_FIELDS = ("user_id", "channel_id", "thread_ts")


def _fits(value: Any, kind: str) -> bool:
    if kind == STR:
        return isinstance(value, str) and 0 < len(value) <= 200_000
    if kind == LIST_OF_STR:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, dict)


def malformed_event(body: Any) -> str | None:
    """Why an `event_callback` body cannot be acted on, or None when it is well-formed (or not an event)."""
    if not isinstance(body, dict) or body.get("type") != "event_callback":
        return None
    event = body.get("event")
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return "event is not an object with a type"
    if not isinstance(body.get("event_id", ""), str):
        return "event_id is not a string"
    fields = EVENT_FIELDS.get(event["type"])
    if fields is None:
        return None
    for name, (kind, required) in fields.items():
        if name not in event:
            if required:
                return f"{event['type']} without {name}"
        elif not _fits(event[name], kind) and not (not required and event[name] is None):
            return f"{event['type']}.{name} is not a {kind}"
    if event["type"].startswith("assistant_thread"):
        thread = event["assistant_thread"]
        if not all(isinstance(thread.get(f), str) and thread.get(f) for f in ASSISTANT_THREAD_FIELDS):
            return f"{event['type']} without user, channel and thread"
        if not isinstance(thread.get("context", {}), dict):
            return f"{event['type']}.assistant_thread.context is not an object"
    if event["type"] == "subteam_updated":
        subteam = event["subteam"]
        if not isinstance(subteam.get("id"), str) or not isinstance(subteam.get("users", []), list):
            return "subteam_updated without a usable subteam"
    return None
