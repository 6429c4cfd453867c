"""The manifest asks for the least Claude Gate needs: the scopes follow from the Web API methods the code calls."""

from __future__ import annotations

import ast
from pathlib import Path

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.manifest import DOWNLOAD_SCOPES, EVENT_SCOPES, METHOD_SCOPES, bot_events, bot_scopes, build_manifest

BOT = Path(__file__).resolve().parents[2] / "bot"
# slack_sdk helpers and Bolt's context utilities → the Web API methods they call
HELPERS = {
    "chat_stream": ("chat.startStream", "chat.appendStream", "chat.stopStream"),
    "files_upload_v2": ("files.getUploadURLExternal", "files.completeUploadExternal"),
    "say": ("chat.postMessage",),
    "set_status": ("assistant.threads.setStatus",),
    "set_suggested_prompts": ("assistant.threads.setSuggestedPrompts",),
    "set_title": ("assistant.threads.setTitle",),
}


def methods_called() -> dict[str, set[str]]:
    """Web API method → the files that call it: ``<anything>.client.chat_postMessage(...)``, ``client.x(...)``,
    slack_sdk's helpers and Bolt's ``say``/``set_status``/… utilities."""
    found: dict[str, set[str]] = {}
    for path in BOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in HELPERS:
                methods: tuple[str, ...] = HELPERS[name]
            elif isinstance(func, ast.Attribute) and "_" in name and callable(getattr(AsyncWebClient, name, None)):
                receiver = ast.unparse(func.value)
                if not receiver.endswith("client"):
                    continue
                methods = (name.replace("_", "."),)
            else:
                continue
            for method in methods:
                found.setdefault(method, set()).add(str(path.relative_to(BOT.parent)))
    return found


def test_every_method_the_code_calls_has_its_scopes_and_no_other_method_is_listed() -> None:
    called = methods_called()
    missing = {m: sorted(files) for m, files in called.items() if m not in METHOD_SCOPES}
    assert not missing, f"add these Web API methods and their scopes to METHOD_SCOPES: {missing}"
    unused = set(METHOD_SCOPES) - set(called)
    assert not unused, f"METHOD_SCOPES lists methods nothing calls (drop them and their scopes): {unused}"


def test_scopes_are_exactly_what_the_methods_events_and_commands_need() -> None:
    for view in ("agent", "assistant"):
        downloads = any("url_private" in path.read_text() for path in BOT.rglob("*.py") if path.name != "manifest.py")
        needed = {"commands", *(DOWNLOAD_SCOPES if downloads else ())}
        for method in methods_called():
            needed.update(METHOD_SCOPES[method])
        for event in bot_events(view):
            needed.update(EVENT_SCOPES[event])
        manifest = build_manifest(view=view)
        assert set(manifest["oauth_config"]["scopes"]["bot"]) == needed == set(bot_scopes(view))
    agent = set(bot_scopes("agent"))
    assert not {"reactions:write", "im:read", "mpim:history"} & agent  # nothing uses them
    assert {"assistant:write", "chat:write", "users:read", "files:read"} <= agent


def test_the_agent_view_is_the_default_and_carries_a_description_and_prompts() -> None:
    manifest = build_manifest()
    agent = manifest["features"]["agent_view"]
    assert agent["agent_description"] and 1 <= len(agent["suggested_prompts"]) <= 4
    assert all(set(p) == {"title", "message"} for p in agent["suggested_prompts"])
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert "app_context_changed" in events and "assistant_thread_started" not in events
    # Slack's stop button on an answer's agent session: without the subscription, Slack shows none
    assert "agent_session_stopped" in events and "agent_session_stopped" not in bot_events("assistant")
    assert manifest["settings"]["org_deploy_enabled"] is False
    assert build_manifest(org=True)["settings"]["org_deploy_enabled"] is True


def test_message_shortcuts_have_the_fields_slacks_manifest_reference_requires() -> None:
    """features.shortcuts: name, type (message or global), callback_id (≤ 255 characters) and description (≤ 150),
    all required; message shortcuts need only the ``commands`` scope, which the manifest always asks for."""
    for view in ("agent", "assistant"):
        manifest = build_manifest(view=view)
        shortcuts = manifest["features"]["shortcuts"]
        assert [s["name"] for s in shortcuts] == ["Ask Claude about this message", "Summarise this thread"]
        for shortcut in shortcuts:
            assert set(shortcut) == {"name", "type", "callback_id", "description"}
            assert shortcut["type"] == "message" and shortcut["name"].strip()
            assert 0 < len(shortcut["callback_id"]) <= 255 and 0 < len(shortcut["description"]) <= 150
        assert len({s["callback_id"] for s in shortcuts}) == len(shortcuts)
        assert "commands" in manifest["oauth_config"]["scopes"]["bot"]
        assert manifest["settings"]["interactivity"]["is_enabled"] is True
