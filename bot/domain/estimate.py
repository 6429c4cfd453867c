"""An upper bound of a request's input tokens, computed before it is sent (the reservation's input part).

The bound it relies on: Claude's tokenizer is a byte-level BPE, so every token of text stands for at least one
byte of its UTF-8 encoding, and a text of *n* UTF-8 bytes is never more than *n* tokens — whatever the script
(CJK is 3 bytes a character, about 1–2 tokens), code, or emoji. Characters ÷ 4 is the usual *average* and
underestimates both code and CJK. On top: a fixed allowance per message for the role markers the API adds, an
image at most ``IMAGE_MAX_TOKENS`` (Anthropic scales images down to about 1.15 megapixels, ≈ w×h/750 tokens), and
a PDF at most ``PDF_PAGE_TOKENS`` per page (the page's text plus its image).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

REQUEST_OVERHEAD_TOKENS = 32  # the request's framing (system prompt markers, the turn that starts the answer)
MESSAGE_OVERHEAD_TOKENS = 8  # each message's role markers
IMAGE_MAX_TOKENS = 1_600  # an image is scaled to ≤ 1.15 MP before it is counted: 1,150,000 / 750 ≈ 1,534
PDF_PAGE_TOKENS = 4_800  # one page: up to ~3,000 tokens of text plus the page as an image (≤ 1,600)
PDF_MAX_PAGES = 100
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


def text_tokens_bound(text: str) -> int:
    """UTF-8 bytes: never below the text's tokens (each token is at least one byte)."""
    return len(text.encode("utf-8", errors="surrogatepass"))


def image_tokens(width: int, height: int) -> int:
    """Anthropic's documented cost of an image, after it is scaled down to the size the model sees."""
    pixels = width * height
    if pixels > 1_150_000:
        pixels = 1_150_000
    return min(IMAGE_MAX_TOKENS, math.ceil(pixels / 750))


def pdf_pages(data: bytes) -> int:
    """The page count of a PDF, counted from its page objects (at least 1, at most Anthropic's 100)."""
    return max(1, min(PDF_MAX_PAGES, len(_PDF_PAGE.findall(data))))


def _block_bound(block: Any) -> int:
    if isinstance(block, str):
        return text_tokens_bound(block)
    if not isinstance(block, Mapping):
        return 0
    kind = block.get("type")
    if kind == "text":
        return text_tokens_bound(str(block.get("text", "")))
    if kind == "image":  # whatever its size, Anthropic scales it to at most IMAGE_MAX_TOKENS
        return IMAGE_MAX_TOKENS
    if kind == "document":
        source = block.get("source") or {}
        if source.get("type") == "text":
            return text_tokens_bound(str(source.get("data", "")))
        if source.get("type") == "base64":
            try:
                data = base64.b64decode(str(source.get("data", "")), validate=False)
            except (binascii.Error, ValueError):
                return PDF_MAX_PAGES * PDF_PAGE_TOKENS
            return pdf_pages(data) * PDF_PAGE_TOKENS
        return PDF_MAX_PAGES * PDF_PAGE_TOKENS
    if kind == "tool_result":
        return content_bound(block.get("content"))
    return text_tokens_bound(str(block))


def content_bound(content: Any) -> int:
    """Upper bound of the tokens of a message's ``content`` (a string or a list of blocks)."""
    if isinstance(content, str):
        return text_tokens_bound(content)
    if isinstance(content, Iterable):
        return sum(_block_bound(block) for block in content)
    return 0


def input_tokens_bound(system: Any, messages: Iterable[Mapping[str, Any]]) -> int:
    """Upper bound of the input tokens of a Messages API request with this system prompt and these messages."""
    total = REQUEST_OVERHEAD_TOKENS + content_bound(system or "")
    for message in messages:
        total += MESSAGE_OVERHEAD_TOKENS + content_bound(message.get("content"))
    return total
