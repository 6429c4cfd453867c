"""An upper bound of a request's input tokens, computed before it is sent (the reservation's input part).

The bound it relies on: Claude's tokenizer is a byte-level BPE, so every token of text stands for at least one
byte of its UTF-8 encoding, and a text of *n* UTF-8 bytes is never more than *n* tokens — whatever the script
(CJK is 3 bytes a character, about 1–2 tokens), code, or emoji. Characters ÷ 4 is the usual *average* and
underestimates both code and CJK. On top: a fixed allowance per message for the role markers the API adds, an
image at most ``IMAGE_MAX_TOKENS`` (Anthropic scales images down to about 1.15 megapixels, ≈ w×h/750 tokens), and
a PDF at most ``PDF_PAGE_TOKENS`` per page (the page's text plus its image).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from bot.domain.files import PDF_MAX_PAGES  # a request's PDFs together; a PDF of unknown pages counts as this

REQUEST_OVERHEAD_TOKENS = 32  # the request's framing (system prompt markers, the turn that starts the answer)
MESSAGE_OVERHEAD_TOKENS = 8  # each message's role markers
IMAGE_MAX_TOKENS = 1_600  # an image is scaled to ≤ 1.15 MP before it is counted: 1,150,000 / 750 ≈ 1,534
PDF_PAGE_TOKENS = 4_800  # one page: up to ~3,000 tokens of text plus the page as an image (≤ 1,600)


def text_tokens_bound(text: str) -> int:
    """UTF-8 bytes: never below the text's tokens (each token is at least one byte)."""
    return len(text.encode("utf-8", errors="surrogatepass"))


def image_tokens(width: int, height: int) -> int:
    """Anthropic's documented cost of an image, after it is scaled down to the size the model sees."""
    pixels = width * height
    if pixels > 1_150_000:
        pixels = 1_150_000
    return min(IMAGE_MAX_TOKENS, math.ceil(pixels / 750))


def _block_bound(block: Any, pdfs_counted: bool) -> int:
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
        if source.get("type") == "base64" and pdfs_counted:
            return 0  # in the request's counted pages
        return PDF_MAX_PAGES * PDF_PAGE_TOKENS
    if kind == "tool_result":
        return content_bound(block.get("content"), pdfs_counted=pdfs_counted)
    return text_tokens_bound(str(block))


def content_bound(content: Any, *, pdfs_counted: bool = False) -> int:
    """Upper bound of the tokens of a message's ``content`` (a string or a list of blocks)."""
    if isinstance(content, str):
        return text_tokens_bound(content)
    if isinstance(content, Iterable):
        return sum(_block_bound(block, pdfs_counted) for block in content)
    return 0


def input_tokens_bound(system: Any, messages: Iterable[Mapping[str, Any]], *, pdf_pages: int | None = None) -> int:
    """Upper bound of the input tokens of a Messages API request with this system prompt and these messages.

    ``pdf_pages``: the pages of the request's PDFs in all, counted by a PDF reader when they were read (a PDF 1.5+
    keeps its pages in compressed object streams: its raw bytes cannot be counted). Without it, each PDF counts
    as the PDF_MAX_PAGES a request may carry."""
    counted = pdf_pages is not None
    total = REQUEST_OVERHEAD_TOKENS + content_bound(system or "", pdfs_counted=counted)
    for message in messages:
        total += MESSAGE_OVERHEAD_TOKENS + content_bound(message.get("content"), pdfs_counted=counted)
    return total + (pdf_pages or 0) * PDF_PAGE_TOKENS
