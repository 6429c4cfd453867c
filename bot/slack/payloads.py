"""Shapes of the Slack events we act on. Slack sends them well-formed; anything else is dropped unread."""

from __future__ import annotations

import re
from typing import Any

STR, ID, TS, LIST_OF_IDS, DICT, LIST = "str", "Slack ID", "timestamp", "list of Slack IDs", "dict", "list"
TEXT = "text"  # a message's text: may be empty (a message of files alone)
SLACK_ID = re.compile(r"[A-Z0-9]{1,40}")  # U…, W…, C…, D…, G…, S…, B…: what reaches the database as a key
SLACK_TS = re.compile(r"\d{1,12}(\.\d{1,9})?")

# event type → {field: (kind, required)}
EVENT_FIELDS: dict[str, dict[str, tuple[str, bool]]] = {
    "app_mention": {"user": (ID, True), "channel": (ID, True), "ts": (TS, True), "text": (TEXT, False),
                    "thread_ts": (TS, False), "bot_id": (ID, False), "subtype": (STR, False),
                    "files": (LIST, False)},
    "message": {"channel": (ID, True), "ts": (TS, True), "user": (ID, False), "text": (TEXT, False),
                "thread_ts": (TS, False), "channel_type": (STR, False), "subtype": (STR, False),
                "bot_id": (ID, False), "parent_user_id": (ID, False), "files": (LIST, False)},
    "app_home_opened": {"user": (ID, True), "tab": (STR, False), "channel": (ID, False)},
    # Slack's reference prints it without `user`: the person is then the one human entry of `authorizations`
    "app_context_changed": {"user": (ID, False), "context": (DICT, False)},
    "assistant_thread_started": {"assistant_thread": (DICT, True)},
    "assistant_thread_context_changed": {"assistant_thread": (DICT, True)},
    "subteam_members_changed": {"subteam_id": (ID, True), "added_users": (LIST_OF_IDS, False),
                                "removed_users": (LIST_OF_IDS, False)},
    "subteam_updated": {"subteam": (DICT, True)},
}
ASSISTANT_THREAD_FIELDS = {"user_id": ID, "channel_id": ID, "thread_ts": TS}


def _fits(value: Any, kind: str) -> bool:
    if kind == STR:  # Slack never sends NUL, and PostgreSQL cannot store it
        return isinstance(value, str) and 0 < len(value) <= 200_000 and "\x00" not in value
    if kind == TEXT:
        return isinstance(value, str) and len(value) <= 200_000 and "\x00" not in value
    if kind == ID:
        return isinstance(value, str) and SLACK_ID.fullmatch(value) is not None
    if kind == TS:
        return isinstance(value, str) and SLACK_TS.fullmatch(value) is not None
    if kind == LIST_OF_IDS:
        return isinstance(value, list) and all(_fits(v, ID) for v in value)
    if kind == LIST:
        return isinstance(value, list)
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
        if not all(_fits(thread.get(name), kind) for name, kind in ASSISTANT_THREAD_FIELDS.items()):
            return f"{event['type']} without user, channel and thread"
        if not isinstance(thread.get("context", {}), dict):
            return f"{event['type']}.assistant_thread.context is not an object"
    if event["type"] == "subteam_updated":
        subteam = event["subteam"]
        if not _fits(subteam.get("id"), ID) or not _fits(subteam.get("users", []), LIST_OF_IDS):
            return "subteam_updated without a usable subteam"
    return None


def asker_id(body: Any) -> str | None:
    """The Slack user a request comes from: who typed the command, clicked, wrote the message or opened the panel.
    None for what no person asked (user-group changes, the bot's own or other bots' messages)."""
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("user_id"), str):  # slash command
        return body["user_id"]
    if isinstance(body.get("user"), dict) and isinstance(body["user"].get("id"), str):  # block action, view
        return body["user"]["id"]
    event = body.get("event")
    if not isinstance(event, dict):
        return None
    if isinstance(event.get("user"), str):
        return event["user"]
    thread = event.get("assistant_thread")
    if isinstance(thread, dict) and isinstance(thread.get("user_id"), str):
        return thread["user_id"]
    if event.get("type") == "app_context_changed":
        return authorizing_person(body)
    return None


def authorizing_person(body: dict[str, Any]) -> str | None:
    """The one person (``is_bot`` false) among an event's ``authorizations``; None when there is none or several."""
    entries = body.get("authorizations")
    people = [entry.get("user_id") for entry in entries if isinstance(entry, dict) and entry.get("is_bot") is False
              ] if isinstance(entries, list) else []
    if len(people) == 1 and _fits(people[0], ID):
        return people[0]
    return None
