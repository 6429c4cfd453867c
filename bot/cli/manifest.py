"""`claude-gate manifest`: the Slack app manifest (JSON) to paste at api.slack.com/apps."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bot.config import Settings


def add_manifest_command(sub: Any) -> None:
    manifest = sub.add_parser("manifest", help="print the Slack app manifest (JSON)")
    manifest.add_argument("--socket", action="store_true", help="Socket Mode (no public URL needed)")
    manifest.add_argument("--url", help="public base URL of this server, for HTTP mode")
    manifest.add_argument("--name", default="Claude Gate")
    manifest.add_argument("--assistant-view", action="store_true",
                          help="the assistant panel (assistant_view) of apps created before the agent experience")
    manifest.add_argument("--org", action="store_true", help="allow an Enterprise Grid org-wide install")
    manifest.set_defaults(handler=cmd_manifest)


def cmd_manifest(_settings: Settings, args: argparse.Namespace) -> int:
    from bot.slack.manifest import build_manifest

    manifest = build_manifest(name=args.name, request_url=args.url, socket_mode=args.socket,
                              view="assistant" if args.assistant_view else "agent", org=args.org)
    print(json.dumps(manifest, indent=2))
    return 0
