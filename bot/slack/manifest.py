"""The Slack app manifest (`claude-gate manifest`): the agent messaging experience by default, only the scopes and
events the features use.

Scopes are not listed by hand: each Web API method the code calls names the scopes it needs (METHOD_SCOPES),
each event its own (EVENT_SCOPES), and tests/unit/test_manifest.py checks that METHOD_SCOPES covers every method the
code calls, so a new call cannot ship without its scope and an unused scope cannot linger.
"""

from __future__ import annotations

from typing import Any, Literal

from bot.slack.render_answers import GENERAL_PROMPTS
from bot.slack.render_shortcuts import SHORTCUTS

View = Literal["agent", "assistant"]

# Web API methods Claude Gate calls → the bot scopes they need (docs.slack.dev/reference/methods).
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "auth.test": (),
    # with the app-level token (its connections:write is that token's scope, set when the token is made): no bot scope
    "apps.connections.open": (),
    "users.info": ("users:read",),  # guests and Slack Connect users are told apart by their profile
    "users.lookupByEmail": ("users:read.email",),  # reminders and offboarding find people by email
    "usergroups.list": ("usergroups:read",),  # user groups mapped to roles
    "usergroups.users.list": ("usergroups:read",),
    "conversations.replies": ("channels:history", "groups:history", "im:history"),  # thread context
    "conversations.history": ("channels:history", "groups:history"),  # "summarise this channel" from the DM
    "conversations.info": ("channels:read", "groups:read"),  # … only where the bot is a member
    "conversations.members": ("channels:read", "groups:read"),  # … and so is the person asking
    "conversations.list": ("channels:read", "groups:read"),  # `claude-gate channel general`: a name to its ID
    "chat.postMessage": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.startStream": ("chat:write",),
    "chat.appendStream": ("chat:write",),
    "chat.stopStream": ("chat:write",),
    "views.publish": (),  # the App Home tab
    "views.open": (),  # the access-request modal, the question of "Ask Claude about this message"
    "files.getUploadURLExternal": ("files:write",),  # files sent to people (SlackApiPort.upload_file)
    "files.completeUploadExternal": ("files:write",),
    "conversations.open": ("im:write",),  # … into a person's DM with the bot (charts, audit exports, shortcuts)
    "assistant.threads.setStatus": ("chat:write",),  # thinking status where agent sessions are not available
    "agents.sessions.setStatus": ("chat:write",),  # each answer's agent session: processing, then active
    "assistant.threads.setSuggestedPrompts": ("assistant:write",),
    "assistant.threads.setTitle": ("assistant:write",),
}

# Files people share with a question are downloaded from their ``url_private`` (bot/slack/files.py).
DOWNLOAD_SCOPES = ("files:read",)

# Events → the scopes that deliver them.
EVENT_SCOPES: dict[str, tuple[str, ...]] = {
    "app_mention": ("app_mentions:read",),
    "message.im": ("im:history",),
    "message.channels": ("channels:history",),  # follow-ups in channel threads without a mention
    "message.groups": ("groups:history",),
    "app_home_opened": (),
    "app_context_changed": (),
    "assistant_thread_started": ("assistant:write",),
    "agent_session_stopped": ("assistant:write",),  # Slack's stop button on an answer's session
    "assistant_thread_context_changed": ("assistant:write",),
    "subteam_members_changed": ("usergroups:read",),
    "subteam_updated": ("usergroups:read",),
}

COMMON_EVENTS = ["app_mention", "message.im", "message.channels", "message.groups", "app_home_opened",
                 "subteam_members_changed", "subteam_updated"]
VIEW_EVENTS: dict[str, list[str]] = {
    "agent": ["app_context_changed", "agent_session_stopped"],
    "assistant": ["assistant_thread_started", "assistant_thread_context_changed"],
}

DESCRIPTION = "Ask Claude, within the limits of your role. Files, threads and the channel you are in are welcome."


def bot_events(view: View = "agent") -> list[str]:
    return [*COMMON_EVENTS, *VIEW_EVENTS[view]]


def bot_scopes(view: View = "agent") -> list[str]:
    """Every scope the called methods, the subscribed events, the slash commands and the shortcuts need, sorted
    (``commands`` carries both)."""
    needed = {"commands", *DOWNLOAD_SCOPES}
    for scopes in METHOD_SCOPES.values():
        needed.update(scopes)
    for event in bot_events(view):
        needed.update(EVENT_SCOPES[event])
    return sorted(needed)


def base_url(text: str) -> str:
    """The server's public base URL as given to ``manifest --url``: ``https://`` when no scheme is given, and
    without a trailing ``/`` or ``/slack/events`` (the manifest adds that path itself)."""
    url = text.strip()
    if "://" not in url:
        url = f"https://{url}"
    url = url.rstrip("/")
    return url.removesuffix("/slack/events").rstrip("/")


def build_manifest(*, name: str = "Claude Gate", request_url: str | None = None, socket_mode: bool = False,
                   view: View = "agent", org: bool = False) -> dict[str, Any]:
    """Socket Mode needs no public URL; HTTP mode sends everything to ``<request_url>/slack/events``.

    ``view="agent"`` is the agent messaging experience (``agent_view``), the only one Slack gives new apps;
    ``"assistant"`` keeps the assistant panel of apps created before. ``org`` allows an Enterprise Grid org-wide
    install.
    """
    events_url = None if socket_mode else f"{base_url(request_url or 'https://your-host.example.com')}/slack/events"
    commands = [
        {"command": "/claude-admin", "description": "Manage Claude Gate: roles, keys, policy, usage, audit",
         "usage_hint": "help | grant @user role | keys | policy | usage | audit", "should_escape": True},
        {"command": "/claude", "description": "Your Claude access: status, model, usage",
         "usage_hint": "help | status | model <haiku|sonnet|opus> | usage", "should_escape": True},
    ]
    if events_url:
        for command in commands:
            command["url"] = events_url
    settings: dict[str, Any] = {
        "event_subscriptions": {"bot_events": bot_events(view)},
        "interactivity": {"is_enabled": True},
        "org_deploy_enabled": org,
        "socket_mode_enabled": socket_mode,
        "token_rotation_enabled": False,
    }
    if events_url:
        settings["event_subscriptions"]["request_url"] = events_url
        settings["interactivity"]["request_url"] = events_url
    prompts = [dict(prompt) for prompt in GENERAL_PROMPTS]
    features: dict[str, Any] = {
        "app_home": {"home_tab_enabled": True, "messages_tab_enabled": True,
                     "messages_tab_read_only_enabled": False},
        "bot_user": {"display_name": name, "always_online": True},
    }
    if view == "agent":
        features["agent_view"] = {"agent_description": DESCRIPTION, "suggested_prompts": prompts}
    else:
        features["assistant_view"] = {"assistant_description": DESCRIPTION, "suggested_prompts": prompts}
    features["shortcuts"] = [dict(shortcut) for shortcut in SHORTCUTS]
    features["slash_commands"] = commands
    return {
        "display_information": {
            "name": name,
            "description": "Claude for everyone here, with roles, limits and an audit trail.",
            "background_color": "#c15f3c",
        },
        "features": features,
        "oauth_config": {"scopes": {"bot": bot_scopes(view)}},
        "settings": settings,
    }
