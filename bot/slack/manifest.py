"""The Slack app manifest (`claude-gate manifest`): scopes, events, commands, assistant view."""

from __future__ import annotations

from typing import Any

BOT_SCOPES = [
    "app_mentions:read",  # mentions in channels
    "assistant:write",  # the assistant panel: status, suggested prompts, titles
    "channels:history",  # thread context in public channels
    "groups:history",  # thread context in private channels
    "mpim:history",
    "im:history",  # direct messages
    "im:read",
    "im:write",  # DMs to grantees and key creators
    "chat:write",
    "commands",  # /claude-admin and /claude
    "users:read",  # roles need to know guests and Slack Connect users
    "users:read.email",  # offboarding finds the Anthropic user by email
    "usergroups:read",  # groups mapped to roles
    "channels:read",  # channel settings: the channel exists and its name
    "groups:read",  # the same for private channels the app is in
    "reactions:write",
]

BOT_EVENTS = [
    "app_mention",
    "message.im",
    "assistant_thread_started",
    "assistant_thread_context_changed",
    "app_home_opened",
    "subteam_members_changed",
    "subteam_updated",
]


def build_manifest(*, name: str = "Claude Gate", request_url: str | None = None,
                   socket_mode: bool = False) -> dict[str, Any]:
    """Socket Mode needs no public URL; HTTP mode sends everything to ``<request_url>/slack/events``."""
    events_url = None if socket_mode else f"{(request_url or 'https://your-host.example.com').rstrip('/')}/slack/events"
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
        "event_subscriptions": {"bot_events": BOT_EVENTS},
        "interactivity": {"is_enabled": True},
        "org_deploy_enabled": False,
        "socket_mode_enabled": socket_mode,
        "token_rotation_enabled": False,
    }
    if events_url:
        settings["event_subscriptions"]["request_url"] = events_url
        settings["interactivity"]["request_url"] = events_url
    return {
        "display_information": {
            "name": name,
            "description": "Claude for everyone here, with roles, limits and an audit trail.",
            "background_color": "#c15f3c",
        },
        "features": {
            "app_home": {"home_tab_enabled": True, "messages_tab_enabled": True,
                         "messages_tab_read_only_enabled": False},
            "bot_user": {"display_name": name, "always_online": True},
            "assistant_view": {"assistant_description": "Ask Claude, within the limits of your role.",
                               "suggested_prompts": []},
            "slash_commands": commands,
        },
        "oauth_config": {"scopes": {"bot": BOT_SCOPES}},
        "settings": settings,
    }
