"""Output safety (docs/security.md): nothing the bot posts notifies people or disguises a link, whoever wrote the text.

``neutralise`` is the one function that makes text safe; it reads text the way both of Slack's syntaxes could
(mrkdwn in ``text`` and sections, Markdown in ``markdown_text`` and markdown blocks) and rewrites:

- ``<!here>`` ``<!channel>`` ``<!everyone>`` ``<!subteam^…>`` ``<@U…>`` ``<#C…>`` (also spelled ``&lt;…&gt;``) into
  plain text (``@here`` with an invisible word joiner after the ``@``, so no reading of it notifies);
- ``<https://a|label>`` and ``[label](https://a)`` into ``label (https://a)``: the real address shows;
- a bare ``@here``/``@channel``/``@everyone`` into the same joined form; Markdown link definitions into text;
- an opener that could still become one of these (``<!chan`` with no ``>``) into ``‹``.

It is applied on the way out, to everything: ``SafeWebClient`` (every Web API call of the app and of Bolt's
per-request clients), ``SafeRespond`` (response URLs), and ``NeutralisingStream`` for Claude's streamed answer,
which holds back the end of what arrived while the next chunk could complete a token. The bot's own mentions
(bot.domain.mentions) are the only live ones.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook import WebhookResponse

from bot.domain.mentions import TOKEN_LIKE, live_tokens
from bot.slack.mrkdwn import mrkdwn

JOINER = "\u2060"  # WORD JOINER: invisible; "@\u2060here" reads as @here and notifies nobody
BROKEN_OPENER = "‹"
BROADCASTS = ("here", "channel", "everyone")

_OPEN = r"(?:<|&lt;|&\#0*60;|&\#x0*3c;)"
_CLOSE = r"(?:>|&gt;|&\#0*62;|&\#x0*3e;)"
_INSIDE = rf"(?:(?!{_OPEN}|{_CLOSE}).)"  # a character of a token's body
_INSIDE_WORD = rf"(?:(?!{_OPEN}|{_CLOSE})\S)"
_LIVE_START = r"(?=[!@#]|[A-Za-z][A-Za-z0-9+.\-]*:(?!:)|www\.)"  # what Slack could read as a mention or a link
# A Slack token (opener, a body holding no other opener or closer, closer), else an opener that is not closed
# before the next one and could still become a token: it is broken.
_ANGLE = re.compile(rf"(?P<open>{_OPEN})(?P<body>{_INSIDE}*)(?P<close>{_CLOSE})|(?P<dangling>{_OPEN}){_LIVE_START}",
                    re.I | re.S)
# an opener that text appended later could close: `<https://evil|Slack SSO`, `<!chan`, `<foo`
_OPENER_AT_END = re.compile(
    rf"(?P<open>{_OPEN})(?:{_INSIDE_WORD}*(?:\|{_INSIDE}*)?|{_LIVE_START}{_INSIDE}*)$", re.I | re.S)
# [label](destination "title") and ![alt](…), one level of nested brackets and parentheses
_MD_LINK = re.compile(
    r"!?\[(?P<label>(?:[^\[\]\\]|\\.|\[(?:[^\[\]\\]|\\.)*\])*)\]\((?P<dest>[^()]*(?:\([^()]*\)[^()]*)*)\)",
    re.S)
# a link reference definition, `[ref]: https://…` (read anywhere, not only at a line start: chunks have no lines)
_MD_DEFINITION = re.compile(r"\]:(?=[ \t]*\n?[ \t]*<?(?:[A-Za-z][A-Za-z0-9+.\-]*:|www\.))")
_BARE_BROADCAST = re.compile(r"(?<!\w)@(?P<word>here|channel|everyone)(?!\w)", re.I)
_PARTIAL_ENTITY = re.compile(r"&[#a-zA-Z0-9]{0,8}$")
_PARTIAL_BROADCAST = re.compile(r"(?<!\w)@(?:h(?:e(?:r(?:e)?)?)?|c(?:h(?:a(?:n(?:n(?:e(?:l)?)?)?)?)?)?"
                                r"|e(?:v(?:e(?:r(?:y(?:o(?:n(?:e)?)?)?)?)?)?)?)?$", re.I)
_AFTER_LABEL = re.compile(r"(?:\([^()]*|:[ \t]*\n?[ \t]*\S{0,12})?")  # what may follow `]` and still become a link
_RAW_ANGLE = re.compile(r"<(?P<body>[^<>]*)>")  # the raw reading: Slack's own brackets, whatever is inside
_ENTITY_BRACKET = re.compile(rf"(?!<|>)(?:{_OPEN}|{_CLOSE})", re.I)
MAX_ROUNDS = 8
# Every rule above starts at one of these characters (an opener or its entity, a bracket, an @, a token's private-use
# marks): text without any of them is already safe, and is passed on without running the rules
_MAY_NEED_WORK = re.compile("[<>&\\[\\]@\ue000\ue001]")


def _spoken(label: str) -> str:
    """A mention's label as plain text: "@team" → "@⁠team"."""
    label = label.strip()
    return f"@{JOINER}{label[1:]}" if label.startswith("@") else label


def _rewrite_angle(match: re.Match[str]) -> str:
    if match.group("dangling") is not None:
        return BROKEN_OPENER
    return _rewrite_token(match.group("open"), match.group("body"), match.group("close"))


def _rewrite_raw(match: re.Match[str]) -> str:
    """A raw ``<…>`` whose body holds an entity opener or closer (``<&|&lt;>``): Slack reads the raw brackets as a
    token whatever the entities inside, so it is rewritten like any token (``_ANGLE`` leaves it, as the entity
    would start another token in the decoded reading)."""
    if _ENTITY_BRACKET.search(match.group("body")) is None:
        return match.group(0)
    return _rewrite_token("<", match.group("body"), ">")


def _rewrite_token(opener: str, body: str, closer: str) -> str:
    head, bar, label = body.partition("|")
    label = label.strip()
    if body.startswith("!"):
        kind = head[1:].split("^", 1)[0].lower()
        if label:
            return label if kind == "date" else _spoken(label)
        if kind in BROADCASTS:
            return f"@{JOINER}{kind}"
        if kind == "subteam":
            return f"@{JOINER}{head.partition('^')[2] or 'group'}"
        if kind == "date":
            return "date"
        # `<!DOCTYPE html>`, `<!-- … -->`: left as they read, with the joiner after the opener
        return f"{opener}{JOINER}{body}{closer}"
    if body.startswith("@"):
        return f"@{JOINER}{label.lstrip('@') or head[1:]}"
    if body.startswith("#"):
        return f"#{label.lstrip('#') or head[1:]}"
    if bar and head and not any(c.isspace() for c in head):  # <address|label>: a link whose label could lie
        return f"{label} ({head})" if label and label != head else head
    return f"{opener}{body}{closer}"  # `<String>`, `<https://a>`: nothing hidden


def _rewrite_link(match: re.Match[str]) -> str:
    label = match.group("label").strip()
    parts = match.group("dest").strip().split()
    address = parts[0].strip("<>") if parts else ""
    if not address:
        return label
    return f"{label} ({address})" if label and label != address else address


def _one_round(text: str, *, more_follows: bool) -> str:
    text = TOKEN_LIKE.sub(lambda m: m.group(2) or "", text)  # a forged or cut mention token is its ID, never live
    text = _ANGLE.sub(_rewrite_angle, text)
    text = _RAW_ANGLE.sub(_rewrite_raw, text)
    if more_follows:  # text appended later could close an opener left open at the end
        found = _OPENER_AT_END.search(text)
        if found:
            text = text[:found.start()] + BROKEN_OPENER + text[found.end("open"):]
    text = _MD_LINK.sub(_rewrite_link, text)
    text = text.replace("](", "] (")  # whatever link syntax is left can no longer be a link
    text = _MD_DEFINITION.sub("] :", text)
    return _BARE_BROADCAST.sub(lambda m: f"@{JOINER}{m.group('word')}", text)


def neutralise(text: str, *, more_follows: bool = False) -> str:
    """``text`` with nothing that notifies anyone or hides a link's address (see the module's docstring).

    Idempotent, and the same whether a text is neutralised whole or in pieces cut where ``hold_from`` allows.
    ``more_follows``: more text will be appended to the same message, so an opener left open at the end is
    broken too.
    """
    if _MAY_NEED_WORK.search(text) is None:
        return text
    for _ in range(MAX_ROUNDS):  # a rewrite can join pieces into a new token: repeat until nothing changes
        done = _one_round(text, more_follows=more_follows)
        if done == text:
            return done
        text = done
    return re.sub(_OPEN, BROKEN_OPENER, text, flags=re.I).replace("](", "] (")


HOLD_LIMIT = 2000  # characters held back at most while a token may still be completed


def hold_from(data: str) -> int:
    """Where the end of ``data`` that the next chunk could turn into a token begins (``len(data)``: nowhere)."""
    cut = len(data)
    if _MAY_NEED_WORK.search(data) is None:
        return cut
    window = max(0, len(data) - HOLD_LIMIT)
    for pattern, start in ((_OPENER_AT_END, window), (_PARTIAL_ENTITY, len(data) - 12),
                           (_PARTIAL_BROADCAST, len(data) - 12)):
        found = pattern.search(data, max(0, start))
        if found:
            cut = min(cut, found.start())
    close = data.rfind("]", window)
    bracket = data.rfind("[", window)
    if bracket > close:  # a label still open
        cut = min(cut, bracket)
    elif close >= 0 and _AFTER_LABEL.fullmatch(data, close + 1):  # `[label]`, `[label](…`, `[ref]: htt`
        opening = data.rfind("[", window, close)
        cut = min(cut, opening if opening >= 0 else close)
    return cut


class NeutralisingStream:
    """Neutralises a text that arrives in pieces (Claude's answer): a mention or link split across two chunks is
    held back until it is complete (at most HOLD_LIMIT characters), then rewritten like any other."""

    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> str:
        data = self._held + text
        cut = hold_from(data)
        self._held = data[cut:]
        return neutralise(data[:cut], more_follows=True) if cut else ""

    def flush(self) -> str:
        data, self._held = self._held, ""
        return neutralise(data)


def safe_text(text: str) -> str:
    """Text on its way to Slack: the bot's marks as mrkdwn (bot/slack/mrkdwn.py), its own mention tokens live,
    everything else neutralised."""
    if not text:
        return text
    text = mrkdwn(text)
    parts = live_tokens(text)
    if len(parts) == 1:
        return neutralise(text)
    # an opener just before a live mention must not swallow it (``<https://evil|`` + ``<@U1>`` + ``>``)
    return "".join(neutralise(segment, more_follows=bool(live)) + live for segment, live in parts)


# Fields that are identifiers, addresses or machine values, never shown as text
NOT_TEXT = frozenset({
    "channel", "channel_id", "channels", "ts", "thread_ts", "message_ts", "user", "user_id", "users",
    "recipient_user_id", "recipient_team_id", "team_id", "enterprise_id", "action_id", "block_id", "callback_id",
    "value", "url", "image_url", "icon_url", "response_url", "trigger_id", "view_id", "external_id", "hash",
    "private_metadata", "metadata", "token", "type", "style", "id", "file", "file_id", "upload_url", "filename",
    "initial_value", "initial_option", "response_type", "usergroup", "name", "event_type", "event_payload",
})


# Fields that may hold Block Kit already serialised as a JSON string; any other string is text, even one that
# looks like JSON (an answer can be a JSON document: it is shown as it was written)
SERIALISED = frozenset({"blocks", "attachments", "view", "chunks", "prompts"})


def safe_payload(value: Any, key: str | None = None) -> Any:
    """A Slack payload (dict, list, Block Kit objects) with every shown text made safe."""
    if key in NOT_TEXT:
        return value
    if isinstance(value, str):
        if key in SERIALISED:  # blocks or a view already serialised as JSON (form-encoded calls)
            try:
                return json.dumps(safe_payload(json.loads(value)), ensure_ascii=False, separators=(",", ":"))
            except ValueError:
                pass
        return safe_text(value)
    if hasattr(value, "to_dict") and callable(value.to_dict):  # slack_sdk's Block Kit model objects
        value = value.to_dict()
    if isinstance(value, Mapping):
        return {k: safe_payload(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [safe_payload(item) for item in value]
    return value


class SafeWebClient(AsyncWebClient):
    """An AsyncWebClient whose every call is made safe by ``safe_payload`` before it leaves."""

    async def api_call(self, api_method: str, *, http_verb: str = "POST", files: dict[str, Any] | None = None,
                       data: Any = None, params: dict[str, Any] | None = None, json: dict[str, Any] | None = None,
                       headers: dict[str, Any] | None = None, auth: dict[str, Any] | None = None) -> Any:
        if isinstance(data, dict):
            data = safe_payload(data)
        return await super().api_call(api_method, http_verb=http_verb, files=files, data=data,
                                      params=safe_payload(params) if params else params,
                                      json=safe_payload(json) if json else json, headers=headers, auth=auth)

    @classmethod
    def like(cls, client: AsyncWebClient) -> SafeWebClient:
        """The same client (token, session, retries …) made safe; Bolt builds a plain one for every request."""
        if isinstance(client, SafeWebClient):
            return client
        safe = cls(token=client.token, base_url=client.base_url, timeout=client.timeout, ssl=client.ssl,
                   proxy=client.proxy, session=client.session, trust_env_in_session=client.trust_env_in_session,
                   headers=client.headers, logger=client.logger, retry_handlers=list(client.retry_handlers))
        safe.default_params = dict(client.default_params)
        return safe


class SafeRespond(AsyncRespond):
    """Bolt's ``respond`` (a POST to the response URL), made safe like every Web API call."""

    async def __call__(self, text: str | dict = "", blocks: Any = None, **kwargs: Any) -> WebhookResponse:  # type: ignore[override]
        if isinstance(text, dict):
            return await super().__call__(safe_payload(text))
        safe = safe_payload({"text": text, "blocks": blocks, **kwargs})
        return await super().__call__(**safe)


class SafeAck(AsyncAck):
    """Bolt's ``ack``: what it says (a command's immediate answer, a modal's errors) is made safe too."""

    async def __call__(self, text: str | dict = "", blocks: Any = None, **kwargs: Any) -> BoltResponse:  # type: ignore[override]
        if isinstance(text, dict):
            return await super().__call__(safe_payload(text))
        return await super().__call__(**safe_payload({"text": text, "blocks": blocks, **kwargs}))
