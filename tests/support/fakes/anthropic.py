"""A fake Anthropic API: Messages (plain and SSE streaming), count_tokens, and a slice of the Admin API.

Use with ``anthropic.AsyncAnthropic(base_url=fake.base_url, api_key="sk-ant-…", max_retries=0)``.

Token counting is deterministic so tests can compute expectations with the same
functions: :func:`count_input_tokens` and :func:`count_output_tokens`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import io
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from pypdf import PdfReader

from .server import ThreadedServer

Body = dict[str, Any]
ReplyFn = Callable[[Body], str]

DEFAULT_ADMIN_KEY = "sk-ant-admin01-test"

# kind → (HTTP status, error type, message)
ERRORS: dict[str, tuple[int, str, str]] = {
    "invalid_request": (400, "invalid_request_error", "Invalid request"),
    "auth": (401, "authentication_error", "invalid x-api-key"),
    "permission": (403, "permission_error", "Your API key does not have permission to use the specified resource."),
    "not_found": (404, "not_found_error", "Not found"),
    "too_large": (413, "request_too_large", "Request exceeds the maximum allowed number of bytes."),
    "rate_limit": (429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
    "server": (500, "api_error", "Internal server error"),
    "overloaded": (529, "overloaded_error", "Overloaded"),
    "admin_server": (500, "api_error", "Internal server error"),
}
MESSAGE_FAILURES = frozenset(ERRORS) - {"admin_server", "not_found"} | {"timeout", "drop", "mid_stream_error",
                                                                       "mid_stream_drop"}
ADMIN_FAILURES = frozenset({"admin_server", "admin_rate_limit", "admin_drop"})


# ----------------------------------------------------------------- token rules


def content_text(content: Any) -> str:
    """Text of a message ``content`` / ``system`` value (string or list of blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict):
                if isinstance(block.get("text"), str):
                    parts.append(block["text"])
                elif block.get("type") == "tool_result":
                    parts.append(content_text(block.get("content")))
        return "\n".join(parts)
    return ""


IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
IMAGE_MAGIC = {"image/png": (b"\x89PNG",), "image/jpeg": (b"\xff\xd8\xff",), "image/gif": (b"GIF87a", b"GIF89a"),
               "image/webp": (b"RIFF",)}
IMAGE_MAX_BASE64 = 5 * 1024 * 1024  # per image, measured on the base64 text
REQUEST_MAX_BYTES = 32 * 1024 * 1024
PDF_MAX_PAGES = 100
FAKE_IMAGE_TOKENS = 1_000  # what the fake charges an image (Anthropic: about width × height / 750)
FAKE_PDF_PAGE_TOKENS = 1_500


def pdf_page_count(data: bytes) -> int | None:
    """A PDF's pages as a reader sees them (its page tree, wherever its objects are); None when it is not a PDF a
    reader can open (Anthropic refuses it)."""
    try:
        return len(PdfReader(io.BytesIO(data), strict=False).pages)
    except Exception:
        return None


def file_blocks(body: Body) -> list[dict[str, Any]]:
    return [block for message in body.get("messages") or [] if isinstance(message, dict)
            and isinstance(message.get("content"), list) for block in message["content"]
            if isinstance(block, dict) and block.get("type") in ("image", "document")]


_PIECES = re.compile(r"[A-Za-z]+|[0-9]{1,3}| (?=\S)|\s+|[^\x00-\x7f]|[^\sA-Za-z0-9]")


def count_text_tokens(text: str) -> int:
    """A pessimistic stand-in for Claude's byte-level BPE: letters in pieces of up to 4, digits in threes, every
    punctuation mark, every run of whitespace and every non-ASCII character a token of its own (an emoji or a rare
    CJK character two). Like the real tokenizer, never more tokens than UTF-8 bytes."""
    tokens = 0
    for piece in _PIECES.findall(text):
        if piece == " ":
            continue  # a single space joins the word after it
        if piece.isascii() and piece.isalpha():
            tokens += -(-len(piece) // 4)
        elif not piece.isascii():
            tokens += 2 if len(piece.encode()) == 4 else 1
        else:
            tokens += 1
    return tokens


def file_tokens(block: Any) -> int:
    """What the fake charges an image or a PDF block (0 for anything else)."""
    if not isinstance(block, dict) or block.get("type") not in ("image", "document"):
        return 0
    if block["type"] == "image":
        return FAKE_IMAGE_TOKENS
    return FAKE_PDF_PAGE_TOKENS * (pdf_page_count(base64.b64decode((block.get("source") or {}).get("data") or ""))
                                   or PDF_MAX_PAGES)


def count_input_tokens(body: Body) -> int:
    """Tokens of the system prompt and every message (:func:`count_text_tokens`), 3 per message of framing, and a
    fixed cost per image and PDF page."""
    tokens = count_text_tokens(content_text(body.get("system")))
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            tokens += 3 + count_text_tokens(content_text(message.get("content")))
    return max(1, tokens + sum(file_tokens(block) for block in file_blocks(body)))


# The shortest prefix each model caches (Anthropic's prompt-caching docs): shorter ones are silently not cached.
CACHE_MINIMUM_TOKENS = {"haiku": 4_096, "opus": 4_096, "sonnet": 1_024}


def cache_minimum(model: str) -> int:
    for family, minimum in CACHE_MINIMUM_TOKENS.items():
        if family in model:
            return minimum
    return 1_024


def prompt_blocks(body: Body) -> list[tuple[int, bool]]:
    """The request's prompt as (tokens, has cache_control) per block, in cache order: system, then messages.

    A message's framing counts with its first block; a string ``content`` is one block (it cannot carry
    cache_control), as is a string ``system``.
    """
    blocks: list[tuple[int, bool]] = []

    def add(content: Any, framing: int) -> None:
        if isinstance(content, str) or not isinstance(content, list):
            blocks.append((framing + count_text_tokens(content_text(content)), False))
            return
        for i, block in enumerate(content):
            marked = isinstance(block, dict) and isinstance(block.get("cache_control"), dict)
            blocks.append(((framing if i == 0 else 0) + count_text_tokens(content_text([block])) + file_tokens(block),
                           marked))

    if body.get("system"):
        add(body.get("system"), 0)
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            add(message.get("content"), 3)
    return blocks


def body_blocks(body: Body) -> list[Any]:
    """The blocks of :func:`prompt_blocks` as JSON values (role and position included), for prefix digests."""
    values: list[Any] = []

    def add(role: str, content: Any) -> None:  # a string is the same prompt as one text block holding it
        blocks = content if isinstance(content, list) else [{"type": "text", "text": content_text(content)}]
        values.extend({"role": role, "block": {k: v for k, v in b.items() if k != "cache_control"}}
                      if isinstance(b, dict) else {"role": role, "block": {"type": "text", "text": b}} for b in blocks)

    if body.get("system"):
        add("system", body.get("system"))
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            add(str(message.get("role")), message.get("content"))
    return values


def count_output_tokens(text: str) -> int:
    """Whitespace-separated words of the reply, at least 1."""
    return max(1, len(text.split()))


def last_user_text(body: Body) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def echo_reply(body: Body) -> str:
    """Default reply: ``"Echo: <last user message text>"``."""
    return f"Echo: {last_user_text(body)}"


def truncate_words(text: str, max_words: int) -> str:
    """The prefix of ``text`` holding its first ``max_words`` words (original spacing kept)."""
    if max_words <= 0:
        return ""
    for i, match in enumerate(re.finditer(r"\S+", text), start=1):
        if i == max_words:
            return text[: match.end()]
    return text


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


class FakeAnthropic(ThreadedServer):
    """In-process fake of api.anthropic.com."""

    def __init__(self) -> None:
        super().__init__()
        #: when non-empty, only these keys are accepted by /v1/messages
        self.valid_keys: set[str] = set()
        self.revoked_keys: set[str] = set()
        #: a string, or callable(body) -> str, producing the assistant text
        self.reply: str | ReplyFn = echo_reply
        self.stop_reason = "end_turn"
        self.chunk_chars = 20
        self.first_token_delay = 0.0
        self.chunk_delay = 0.0
        self.response_delay = 0.0
        self.require_version_header = True

        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0

        # admin API
        self.admin_key = DEFAULT_ADMIN_KEY
        self.default_workspace_id = "wrkspc_01default"
        self.org_keys: dict[str, dict[str, Any]] = {}
        self.org_users: dict[str, dict[str, Any]] = {}
        self.admin_requests: list[dict[str, Any]] = []

        # the cost report (/v1/organizations/analytics/cost), built from the usage of every answer given
        #: when the fake's day is (tests point it at the app's clock)
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        #: every answer's usage: at, key (the secret sent), model, input, output, cache_write, cache_read
        self.usage_log: list[dict[str, Any]] = []
        #: list prices the fake bills at, written by the test: model → USD per million tokens
        #: (input, output, 5-minute cache write, cache read)
        self.list_prices: dict[str, tuple[float, float, float, float]] = {}
        #: the secret of a key → its Anthropic ID (apikey_…); usage on an unknown secret has no api_key_id
        self.key_ids: dict[str, str] = {}
        #: further cost rows (day, api_key_id, model, USD): spend the gate never saw, or a billing difference
        self.extra_costs: list[tuple[str, str | None, str, float]] = []
        #: the most rows a cost report page holds, whatever ``limit`` asks (tests of paging set it low)
        self.cost_page_cap = 1000
        #: the Models API's list (/v1/models), ModelInfo's shape; None: every model ID the installed SDK names,
        #: active
        self.listed_models: list[dict[str, Any]] | None = None
        self.models_page_cap = 1000  # the most models a page holds, whatever ``limit`` asks

        #: prompt caching: (model, prefix digest) → tokens of prefixes written to the cache
        self.prompt_cache: dict[tuple[str, str], int] = {}
        self._failures: list[tuple[str, dict[str, Any]]] = []
        self._admin_failures: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._clock = itertools.count()

    # ================================================================ config API

    # exposed so tests can compute expectations without importing module functions
    input_tokens_for = staticmethod(count_input_tokens)
    output_tokens_for = staticmethod(count_output_tokens)

    def reply_for(self, body: Body) -> str:
        """The text this fake answers ``body`` with (before max_tokens truncation)."""
        return self.reply(body) if callable(self.reply) else str(self.reply)

    def fail_next(self, kind: str, times: int = 1, **opts: Any) -> None:
        """Queue ``times`` failures of ``kind`` for the next /v1/messages (or admin) requests.

        Kinds: rate_limit (opts: retry_after="0"), overloaded, server, auth, permission,
        invalid_request, too_large, timeout (seconds=30), drop, mid_stream_error (deltas=2; a
        non-streaming request gets a 529 instead), mid_stream_drop (deltas=2, then the connection is cut
        without an error event or a chunked-encoding end);
        admin: admin_server, admin_rate_limit, admin_drop. Common opts: message=..., should_retry=bool.
        """
        if kind not in MESSAGE_FAILURES and kind not in ADMIN_FAILURES:
            raise ValueError(f"unknown failure kind {kind!r}")
        with self._lock:
            target = self._admin_failures if kind in ADMIN_FAILURES else self._failures
            target.extend((kind, dict(opts)) for _ in range(times))

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()
            self._admin_failures.clear()

    def add_org_key(
        self,
        key_id: str,
        name: str,
        *,
        status: str = "active",
        created_by: str | None = "user_01fake",
        workspace_id: str | None = None,
        created_at: str | datetime | None = None,
        hint: str | None = None,
        expires_at: str | datetime | None = None,
    ) -> dict[str, Any]:
        """Add an API key object (shape of ``anthropic.types.organization.APIKey``)."""
        if created_at is None:
            moment = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=next(self._clock))
            created = _rfc3339(moment)
        elif isinstance(created_at, datetime):
            created = _rfc3339(created_at)
        else:
            created = created_at
        creator = None
        if created_by:
            kind = "service_account" if created_by.startswith(("svac_", "sa_")) else "user"
            creator = {"id": created_by, "type": kind}
        tail = re.sub(r"[^A-Za-z0-9]", "", key_id)[-4:].rjust(4, "A")
        key = {
            "id": key_id,
            "type": "api_key",
            "name": name,
            "status": status,
            "created_at": created,
            "created_by": creator,
            "expires_at": _rfc3339(expires_at) if isinstance(expires_at, datetime) else expires_at,
            "partial_key_hint": hint or f"sk-ant-api03-{tail[:3]}...{tail}",
            "principal": None,
            "scope": {"type": "workspace", "workspace_id": workspace_id or self.default_workspace_id},
            # legacy field (null = default workspace), kept for older clients
            "workspace_id": workspace_id,
        }
        self.org_keys[key_id] = key
        return key

    def add_org_user(self, user_id: str, email: str, name: str, role: str = "user") -> dict[str, Any]:
        """Add an organization user (shape of ``anthropic.types.organization.OrganizationUser``)."""
        moment = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=next(self._clock))
        user = {"id": user_id, "type": "user", "email": email, "name": name, "role": role, "added_at": _rfc3339(moment)}
        self.org_users[user_id] = user
        return user

    # ================================================================ readers

    def message_requests(self) -> list[dict[str, Any]]:
        return [r for r in list(self.requests) if r["path"] == "/v1/messages"]

    def last_body(self) -> Body:
        reqs = self.message_requests()
        if not reqs:
            raise AssertionError("no /v1/messages request recorded")
        return reqs[-1]["body"]

    # ================================================================ HTTP

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/messages", self._handle_messages)
        app.router.add_post("/v1/messages/count_tokens", self._handle_count_tokens)
        app.router.add_get("/v1/organizations/api_keys", self._handle_list_keys)
        app.router.add_get("/v1/organizations/api_keys/{key_id}", self._handle_get_key)
        app.router.add_post("/v1/organizations/api_keys/{key_id}", self._handle_update_key)
        app.router.add_get("/v1/organizations/users", self._handle_list_users)
        app.router.add_get("/v1/organizations/analytics/cost", self._handle_cost)
        app.router.add_get("/v1/models", self._handle_models)
        app.router.add_get("/v1/organizations/users/{user_id}", self._handle_get_user)
        return app

    @staticmethod
    def _request_id() -> str:
        return "req_" + uuid.uuid4().hex[:24]

    @classmethod
    def error_response(
        cls,
        status: int,
        error_type: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        request_id = cls._request_id()
        body = {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}
        return web.json_response(body, status=status, headers={"request-id": request_id, **(headers or {})})

    @staticmethod
    def _key_of(request: web.Request) -> str | None:
        key = request.headers.get("x-api-key")
        if key:
            return key
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return None

    def _version_error(self, request: web.Request) -> web.Response | None:
        if self.require_version_header and not request.headers.get("anthropic-version"):
            return self.error_response(400, "invalid_request_error", "anthropic-version: header is required")
        return None

    def _auth_error(self, key: str | None) -> web.Response | None:
        if not key:
            return self.error_response(401, "authentication_error", "x-api-key header is required")
        if key in self.revoked_keys or (self.valid_keys and key not in self.valid_keys):
            return self.error_response(401, "authentication_error", "invalid x-api-key")
        return None

    def _injected_error(self, kind: str, opts: dict[str, Any]) -> web.Response:
        status, error_type, message = ERRORS[kind]
        headers: dict[str, str] = {}
        if kind == "rate_limit":
            headers["retry-after"] = str(opts.get("retry_after", "0"))
        if "should_retry" in opts:
            headers["x-should-retry"] = "true" if opts["should_retry"] else "false"
        return self.error_response(
            int(opts.get("status", status)), error_type, str(opts.get("message", message)), headers=headers
        )

    async def _read_json(self, request: web.Request) -> tuple[Body | None, web.Response | None]:
        raw = await request.read()
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            return None, self.error_response(400, "invalid_request_error", "Request body is not valid JSON")
        if not isinstance(body, dict):
            return None, self.error_response(400, "invalid_request_error", "Request body must be a JSON object")
        return body, None

    def _record(self, request: web.Request, body: Body | None, key: str | None) -> dict[str, Any]:
        """Keep the request; ``answered_at`` is set when a stream's response headers are sent."""
        entry = {
            "path": request.path,
            "body": body,
            "api_key": key,
            "headers": dict(request.headers),
            "at": time.monotonic(),
            "answered_at": None,
        }
        self.requests.append(entry)
        return entry

    @staticmethod
    def _validate_messages_body(body: Body, *, need_max_tokens: bool) -> str | None:
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "model: Field required"
        if need_max_tokens:
            max_tokens = body.get("max_tokens")
            if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
                return "max_tokens: Field required"
            if max_tokens < 1:
                return "max_tokens: Input should be greater than or equal to 1"
        messages = body.get("messages")
        if not isinstance(messages, list):
            return "messages: Field required"
        if not messages:
            return "messages: at least one message is required"
        pages = 0
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
                return f"messages.{i}.role: Input should be 'user' or 'assistant'"
            if "content" not in message:
                return f"messages.{i}.content: Field required"
            content = message["content"]
            for j, block in enumerate(content if isinstance(content, list) else []):
                kind = block.get("type") if isinstance(block, dict) else None
                where = f"messages.{i}.content.{j}"
                if kind == "text":
                    if not isinstance(block.get("text"), str):
                        return f"{where}.text.text: Field required"
                elif kind in ("image", "document"):
                    source = block.get("source") or {}
                    if source.get("type") != "base64" or not isinstance(source.get("data"), str):
                        return f"{where}.{kind}.source: base64 source with data required"
                    try:
                        data = base64.b64decode(source["data"], validate=True)
                    except (ValueError, binascii.Error):
                        return f"{where}.{kind}.source.base64.data: invalid base64 data"
                    media_type = source.get("media_type")
                    if kind == "image":
                        if media_type not in IMAGE_TYPES:
                            return f"{where}.image.source.base64.media_type: Input should be one of {IMAGE_TYPES}"
                        if len(source["data"]) > IMAGE_MAX_BASE64:
                            return (f"{where}.image.source.base64: image exceeds 5 MB maximum: "
                                    f"{len(source['data'])} bytes > {IMAGE_MAX_BASE64} bytes")
                        if not data.startswith(IMAGE_MAGIC[media_type]):
                            return f"{where}.image.source.base64.data: Image does not match the provided media type"
                    else:
                        counted = pdf_page_count(data) if media_type == "application/pdf" else None
                        if counted is None:
                            return f"{where}.document.source.base64.data: The PDF specified was not valid."
                        pages += counted
                else:
                    return f"{where}.type: Input tag {kind!r} is not one of the expected tags"
        if pages > PDF_MAX_PAGES:
            return f"A maximum of {PDF_MAX_PAGES} PDF pages may be provided."
        return None

    async def _handle_messages(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._messages(request)
        finally:
            self.in_flight -= 1

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        key = self._key_of(request)
        body, bad_json = await self._read_json(request)
        entry = self._record(request, body, key)
        if self.response_delay:
            await asyncio.sleep(self.response_delay)
        if (err := self._auth_error(key)) is not None:
            return err
        if (err := self._version_error(request)) is not None:
            return err

        with self._lock:
            kind, opts = self._failures.pop(0) if self._failures else (None, {})
        if kind == "timeout":
            await asyncio.sleep(float(opts.get("seconds", 30)))
        elif kind == "drop":
            return await self._drop(request)
        elif kind is not None and kind not in ("mid_stream_error", "mid_stream_drop"):
            return self._injected_error(kind, opts)

        if bad_json is not None:
            return bad_json
        assert body is not None
        if (request.content_length or 0) > REQUEST_MAX_BYTES:
            return self.error_response(413, "request_too_large", ERRORS["too_large"][2])
        if (problem := self._validate_messages_body(body, need_max_tokens=True)) is not None:
            return self.error_response(400, "invalid_request_error", problem)

        text = self.reply_for(body)
        stop_reason = self.stop_reason
        if count_output_tokens(text) > body["max_tokens"]:
            text, stop_reason = truncate_words(text, body["max_tokens"]), "max_tokens"
        streaming = body.get("stream") is True
        if kind in ("mid_stream_error", "mid_stream_drop") and not streaming:
            # a plain request has no "middle": fail it the way a broken stream would be reported
            return self._injected_error("overloaded", opts)
        if streaming:
            return await self._stream(request, body, text, stop_reason, entry=entry,
                                      mid_stream_error=opts if kind == "mid_stream_error" else None,
                                      drop_after=int(opts.get("deltas", 2)) if kind == "mid_stream_drop" else None)
        message = self._message(body, text, stop_reason, bill=(key, text))
        return web.json_response(message, headers={"request-id": self._request_id()})

    async def _drop(self, request: web.Request) -> web.StreamResponse:
        """Close the connection without sending a response."""
        transport = request.transport
        if transport is not None:
            transport.abort()
        # The handler's response is never written; raising cancels it quietly.
        raise asyncio.CancelledError

    def cache_usage(self, body: Body) -> tuple[int, int, int]:
        """(input, cache write, cache read) tokens, the way the API reports them.

        At each ``cache_control`` breakpoint the longest prefix already cached (looking back at block boundaries,
        as the API does within 20 blocks) is read; the rest up to the breakpoint is written, if the prefix is at
        least the model's minimum. Input tokens are those after the last cached or written prefix.
        """
        blocks = prompt_blocks(body)
        model = str(body.get("model", ""))
        digests, running = [], hashlib.sha256()
        for block in body_blocks(body):
            running.update(json.dumps(block, sort_keys=True).encode())
            digests.append(running.copy().hexdigest())
        total = sum(tokens for tokens, _ in blocks)
        prefix_tokens = list(itertools.accumulate(tokens for tokens, _ in blocks))
        read = written = 0
        with self._lock:
            for end, (_, marked) in enumerate(blocks):
                if not marked:
                    continue
                hit = next((prefix_tokens[j] for j in range(end, max(-1, end - 20), -1)
                            if (model, digests[j]) in self.prompt_cache), 0)
                if prefix_tokens[end] >= cache_minimum(model):
                    read = max(read, hit)
                    written = prefix_tokens[end] - read
                    self.prompt_cache[(model, digests[end])] = prefix_tokens[end]
        if read + written == 0:
            return max(1, total), 0, 0
        return max(1, total - read - written), written, read

    def _message(self, body: Body, text: str, stop_reason: str,
                 bill: tuple[str | None, str] | None = None) -> dict[str, Any]:
        """A Messages response; with ``bill`` (the key and the whole answer's text), its usage goes to the usage
        log the cost report is built from."""
        uncached, written, read = self.cache_usage(body)
        if bill is not None:
            self.usage_log.append({"at": self.now(), "key": bill[0], "model": body["model"], "input": uncached,
                                   "output": count_output_tokens(bill[1]), "cache_write": written,
                                   "cache_read": read})
        return {
            "id": _new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": uncached,
                "output_tokens": count_output_tokens(text),
                "cache_creation_input_tokens": written,
                "cache_read_input_tokens": read,
            },
        }

    @staticmethod
    def sse(event: str, data: dict[str, Any]) -> bytes:
        return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()

    def chunks_of(self, text: str) -> list[str]:
        size = max(1, int(self.chunk_chars))
        return [text[i : i + size] for i in range(0, len(text), size)]

    async def _stream(
        self,
        request: web.Request,
        body: Body,
        text: str,
        stop_reason: str,
        *,
        mid_stream_error: dict[str, Any] | None,
        drop_after: int | None = None,
        entry: dict[str, Any] | None = None,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "request-id": self._request_id(),
            },
        )
        await response.prepare(request)
        if entry is not None:
            entry["answered_at"] = time.monotonic()
        whole = mid_stream_error is None and drop_after is None and entry is not None
        message = self._message(body, "", stop_reason, bill=(entry["api_key"], text) if whole and entry else None)
        message.update(content=[], stop_reason=None)
        message["usage"]["output_tokens"] = 1
        await response.write(self.sse("message_start", {"type": "message_start", "message": message}))
        await response.write(
            self.sse(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            )
        )
        await response.write(self.sse("ping", {"type": "ping"}))
        chunks = self.chunks_of(text)
        if mid_stream_error is not None:
            chunks = chunks[: int(mid_stream_error.get("deltas", 2))]
        if drop_after is not None:
            chunks = chunks[:drop_after]
        for i, chunk in enumerate(chunks):
            delay = self.first_token_delay if i == 0 else self.chunk_delay
            if delay:
                await asyncio.sleep(delay)
            delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": chunk}}
            await response.write(self.sse("content_block_delta", delta))
        if drop_after is not None:
            await asyncio.sleep(0.2)  # the deltas reach the client first (an abort discards what is unread)
            return await self._drop(request)
        if mid_stream_error is not None:
            error = {
                "type": "error",
                "error": {
                    "type": str(mid_stream_error.get("error_type", "overloaded_error")),
                    "message": str(mid_stream_error.get("message", "Overloaded")),
                },
            }
            await response.write(self.sse("error", error))
            with contextlib.suppress(ConnectionError):
                await response.write_eof()
            return response
        await response.write(self.sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        await response.write(
            self.sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": count_output_tokens(text)},
                },
            )
        )
        await response.write(self.sse("message_stop", {"type": "message_stop"}))
        await response.write_eof()
        return response

    async def _handle_count_tokens(self, request: web.Request) -> web.Response:
        key = self._key_of(request)
        body, bad_json = await self._read_json(request)
        self._record(request, body, key)
        if (err := self._auth_error(key) or self._version_error(request)) is not None:
            return err
        if bad_json is not None:
            return bad_json
        assert body is not None
        if (problem := self._validate_messages_body(body, need_max_tokens=False)) is not None:
            return self.error_response(400, "invalid_request_error", problem)
        return web.json_response({"input_tokens": count_input_tokens(body)}, headers={"request-id": self._request_id()})

    # ================================================================ admin API

    async def _admin_gate(self, request: web.Request) -> web.StreamResponse | None:
        key = self._key_of(request)
        body: Any = None
        if request.method == "POST":
            raw = await request.read()
            with contextlib.suppress(ValueError):
                body = json.loads(raw) if raw else {}
        self.admin_requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": {k: (v[0] if len(v) == 1 else v) for k in request.query for v in [request.query.getall(k)]},
                "body": body,
                "api_key": key,
                "headers": dict(request.headers),
                "at": time.monotonic(),
            }
        )
        if key != self.admin_key:
            return self.error_response(401, "authentication_error", "invalid x-api-key")
        if (err := self._version_error(request)) is not None:
            return err
        with self._lock:
            kind, opts = self._admin_failures.pop(0) if self._admin_failures else (None, {})
        if kind == "admin_server":
            return self._injected_error("admin_server", opts)
        if kind == "admin_rate_limit":
            return self._injected_error("rate_limit", opts)
        if kind == "admin_drop":
            return await self._drop(request)
        return None

    @staticmethod
    def _page(items: list[dict[str, Any]], query: Any) -> web.Response | dict[str, Any]:
        try:
            limit = int(query.get("limit", 20))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            return FakeAnthropic.error_response(400, "invalid_request_error", "limit: must be between 1 and 1000")
        ids = [item["id"] for item in items]
        after_id, before_id = query.get("after_id"), query.get("before_id")
        if after_id and before_id:
            return FakeAnthropic.error_response(
                400, "invalid_request_error", "Only one of after_id and before_id may be given"
            )
        if before_id:
            if before_id not in ids:
                return FakeAnthropic.error_response(400, "invalid_request_error", f"before_id: unknown id {before_id}")
            end = ids.index(before_id)
            start = max(0, end - limit)
            page, has_more = items[start:end], start > 0
        else:
            start = 0
            if after_id:
                if after_id not in ids:
                    return FakeAnthropic.error_response(
                        400, "invalid_request_error", f"after_id: unknown id {after_id}"
                    )
                start = ids.index(after_id) + 1
            page, has_more = items[start : start + limit], start + limit < len(items)
        return {
            "data": page,
            "has_more": has_more,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
        }

    @staticmethod
    def model_info(model_id: str, lifecycle: str = "active", *, retires_at: str | None = None,
                   max_input_tokens: int | None = 1_000_000) -> dict[str, Any]:
        """One entry of the Models API (``anthropic.types.ModelInfo``)."""
        return {"id": model_id, "type": "model", "display_name": model_id.replace("-", " ").title(),
                "created_at": "2026-01-01T00:00:00Z", "lifecycle": lifecycle, "retires_at": retires_at,
                "deprecated_at": "2026-06-01T00:00:00Z" if lifecycle != "active" else None,
                "max_input_tokens": max_input_tokens, "max_tokens": 64_000}

    async def _handle_models(self, request: web.Request) -> web.StreamResponse:
        """GET /v1/models with any valid key: the list, paged by limit / after_id / before_id as documented."""
        key = self._key_of(request)
        self.admin_requests.append({"method": "GET", "path": request.path, "query": dict(request.query),
                                    "body": None, "api_key": key, "headers": dict(request.headers),
                                    "at": time.monotonic()})
        if (err := self._auth_error(key)) is not None:
            return err
        if self.listed_models is None:
            from bot.sdk_models import sdk_model_ids

            listed = [self.model_info(m) for m in dict.fromkeys(sdk_model_ids())]
        else:
            listed = list(self.listed_models)
        query = dict(request.query)
        if query.get("limit", "20").isdigit():  # anything else is _page's 400
            query["limit"] = str(min(int(query.get("limit", "20")), self.models_page_cap))
        return self._json(self._page(listed, query))

    def cost_rows(self) -> dict[tuple[str, str | None, str], float]:
        """(UTC day, api_key_id, model) → USD: the usage log at the test's list prices, plus the extra rows."""
        rows: dict[tuple[str, str | None, str], float] = {}
        for use in list(self.usage_log):
            inp, out, write, read = self.list_prices[use["model"]]
            usd = (use["input"] * inp + use["output"] * out + use["cache_write"] * write
                   + use["cache_read"] * read) / 1_000_000
            key = (use["at"].astimezone(UTC).date().isoformat(), self.key_ids.get(use["key"] or ""), use["model"])
            rows[key] = rows.get(key, 0.0) + usd
        for day, key_id, model, usd in self.extra_costs:
            rows[(day, key_id, model)] = rows.get((day, key_id, model), 0.0) + usd
        return rows

    async def _handle_cost(self, request: web.Request) -> web.StreamResponse:
        """GET /v1/organizations/analytics/cost, as documented: group_by[] api_key_id and model, daily buckets
        (time_bucket_width=1d, ending_at required, at most 31 days), amounts in fractional cents as strings,
        pages by an opaque ``page`` cursor with ``has_more`` / ``next_page``."""
        if (gate := await self._admin_gate(request)) is not None:
            return gate
        query = request.query
        group_by = set(query.getall("group_by[]", [])) | set(query.getall("group_by", []))
        bad = self.error_response
        try:
            start = datetime.fromisoformat(query["starting_at"])
            end = datetime.fromisoformat(query["ending_at"]) if "ending_at" in query else None
            limit = int(query.get("limit", 20))
        except (KeyError, ValueError):
            return bad(400, "invalid_request_error", "starting_at (RFC 3339) is required; limit is a number")
        if query.get("time_bucket_width") != "1d" or end is None or not group_by <= {"api_key_id", "model"}:
            return bad(400, "invalid_request_error", "this fake serves daily buckets (time_bucket_width=1d with "
                                                     "ending_at) grouped by api_key_id and model")
        if start.tzinfo is None or end.tzinfo is None or not start < end <= start + timedelta(days=31):
            return bad(400, "invalid_request_error", "the range must be tz-aware and span at most 31 days")
        if not 1 <= limit <= 1000:
            return bad(400, "invalid_request_error", "limit: must be between 1 and 1000")
        items = []
        for (day, key_id, model), usd in sorted(self.cost_rows().items(), key=lambda kv: (kv[0][0], str(kv[0][1]),
                                                                                           kv[0][2])):
            bucket = datetime.fromisoformat(day).replace(tzinfo=UTC)
            if not start <= bucket < end:
                continue
            cents = f"{usd * 100:.6f}"
            items.append({"starting_at": _rfc3339(bucket), "ending_at": _rfc3339(bucket + timedelta(days=1)),
                          "group": {"api_key_id": key_id if "api_key_id" in group_by else None,
                                    "model": model if "model" in group_by else None},
                          "cost": {"amount": cents, "list_amount": cents, "currency": "USD", "requests": None}})
        offset = int(query.get("page") or 0)
        limit = min(limit, self.cost_page_cap)
        page = items[offset:offset + limit]
        more = offset + limit < len(items)
        return web.json_response({"data": page, "has_more": more, "next_page": str(offset + limit) if more else None,
                                  "data_refreshed_at": _rfc3339(datetime.now(UTC))})

    @staticmethod
    def _json(payload: dict[str, Any] | web.Response) -> web.Response:
        if isinstance(payload, web.Response):
            return payload
        return web.json_response(payload, headers={"request-id": FakeAnthropic._request_id()})

    async def _handle_list_keys(self, request: web.Request) -> web.StreamResponse:
        if (err := await self._admin_gate(request)) is not None:
            return err
        q = request.query
        keys = list(self.org_keys.values())
        if q.get("status"):
            keys = [k for k in keys if k["status"] == q["status"]]
        if q.get("workspace_id"):
            keys = [k for k in keys if k["scope"].get("workspace_id") == q["workspace_id"]]
        if q.get("created_by_user_id"):
            keys = [k for k in keys if (k["created_by"] or {}).get("id") == q["created_by_user_id"]]
        return self._json(self._page(keys, q))

    async def _handle_get_key(self, request: web.Request) -> web.StreamResponse:
        if (err := await self._admin_gate(request)) is not None:
            return err
        key = self.org_keys.get(request.match_info["key_id"])
        if key is None:
            return self.error_response(404, "not_found_error", "API key not found")
        return self._json(dict(key))

    async def _handle_update_key(self, request: web.Request) -> web.StreamResponse:
        if (err := await self._admin_gate(request)) is not None:
            return err
        key = self.org_keys.get(request.match_info["key_id"])
        if key is None:
            return self.error_response(404, "not_found_error", "API key not found")
        body = self.admin_requests[-1]["body"]
        if not isinstance(body, dict):
            return self.error_response(400, "invalid_request_error", "Request body must be a JSON object")
        status = body.get("status")
        if status is not None and status not in ("active", "inactive", "archived"):
            return self.error_response(400, "invalid_request_error", f"status: invalid value {status!r}")
        if key["status"] == "archived" and (status or body.get("name") is not None):
            return self.error_response(400, "invalid_request_error", "Cannot update an archived API key")
        if body.get("name") is not None:
            key["name"] = str(body["name"])
        if status is not None:
            key["status"] = status
        return self._json(dict(key))

    async def _handle_list_users(self, request: web.Request) -> web.StreamResponse:
        if (err := await self._admin_gate(request)) is not None:
            return err
        q = request.query
        users = list(self.org_users.values())
        if q.get("email"):
            users = [u for u in users if u["email"].lower() == q["email"].lower()]
        roles = q.getall("roles[]", []) + q.getall("roles", [])
        if roles:
            users = [u for u in users if u["role"] in roles]
        return self._json(self._page(users, q))

    async def _handle_get_user(self, request: web.Request) -> web.StreamResponse:
        if (err := await self._admin_gate(request)) is not None:
            return err
        user = self.org_users.get(request.match_info["user_id"])
        if user is None:
            return self.error_response(404, "not_found_error", "User not found")
        return self._json(dict(user))
