"""Files sent to Claude with a question (docs/using.md): which ones fit, how they become content blocks, and
what they cost in input tokens. Pure rules; downloading is bot/slack/files.py.

Anthropic's limits are on the request: an image's 5 MB is the size of its base64 text (about 3.75 MB of file),
and the whole request may carry 32 MB and 100 PDF pages. Each request therefore spends from one budget.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bot.domain.marks import code

MAX_FILES = 5  # files sent with one question, newest first
MAX_DOWNLOADS = MAX_FILES + 2  # files read for one question: a few may turn out not to be what they say
IMAGE_MAX_BASE64 = 5 * 1024 * 1024  # Anthropic: 5 MB per image, measured on its base64 source
IMAGE_MAX_BYTES = IMAGE_MAX_BASE64 * 3 // 4  # ≈ 3.75 MB of file
REQUEST_MAX_BYTES = 32 * 1024 * 1024  # the whole request, base64 included
REQUEST_TEXT_ROOM = 2 * 1024 * 1024  # kept for the system prompt, the thread and the question
FILES_MAX_BASE64 = REQUEST_MAX_BYTES - REQUEST_TEXT_ROOM
PDF_MAX_PAGES = 100  # per request
TEXT_MAX_BYTES = 1024 * 1024  # code, CSV, Markdown…

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
PDF_TYPE = "application/pdf"
# A file's name as shown inside code(): no backtick to end it early, no markup
SAFE_NAME = {ord("`"): "'", ord("<"): "‹", ord(">"): "›", ord("&"): "+", ord("\n"): " "}
REMOTE_TYPE = "application/vnd.slack-remote"  # a remote file (files.remote.*): its url_private is its external_url
TEXT_TYPES = frozenset({"application/json", "application/xml", "application/x-yaml", "application/yaml",
                        "application/javascript", "application/x-sh", "application/sql", "application/toml"})
TEXT_FILETYPES = frozenset({"text", "csv", "tsv", "markdown", "python", "javascript", "typescript", "json", "yaml",
                            "xml", "html", "css", "sql", "shell", "go", "rust", "java", "kotlin", "c", "cpp",
                            "csharp", "ruby", "php", "swift", "scala", "toml", "diff", "post", "log"})


@dataclass(frozen=True)
class SlackFile:
    """What a Slack file object says about a file (nothing is trusted until its bytes are read)."""

    id: str
    name: str
    mimetype: str
    filetype: str
    size: int
    url: str  # url_private
    external: bool = False  # stored outside Slack (a remote file): its url_private may point anywhere

    @property
    def kind(self) -> str | None:
        """"image", "pdf", "text", or None for a file Claude cannot read."""
        if self.mimetype in IMAGE_TYPES:
            return "image"
        if self.mimetype == PDF_TYPE or self.filetype == "pdf":
            return "pdf"
        if self.mimetype.startswith("text/") or self.mimetype in TEXT_TYPES or self.filetype in TEXT_FILETYPES:
            return "text"
        return None


def slack_file(obj: Any) -> SlackFile | None:
    """A file object of a Slack message as a SlackFile; None when it has no ``url_private`` at all.

    A remote file (``mode: external``, ``is_external``, or Slack's remote mimetype) is marked ``external``: Slack's
    docs for ``files.remote.*`` say its ``url_private`` is the ``external_url`` it was added with, on any host, and
    must never be sent a token."""
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or not isinstance(obj.get("url_private"), str):
        return None
    size = obj.get("size")
    name = str(obj.get("name") or obj.get("title") or obj["id"])[:200]
    name = name.translate(SAFE_NAME)
    mimetype = str(obj.get("mimetype") or "").lower()
    external = obj.get("mode") == "external" or obj.get("is_external") is True or mimetype == REMOTE_TYPE
    return SlackFile(id=obj["id"], name=name, mimetype=mimetype, filetype=str(obj.get("filetype") or "").lower(),
                     size=size if isinstance(size, int) and size >= 0 else 0, url=obj["url_private"],
                     external=external)


def base64_size(raw_bytes: int) -> int:
    return 4 * math.ceil(raw_bytes / 3)


def sniff_media_type(data: bytes) -> str | None:
    """The media type the bytes say they are (never the file name's)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return PDF_TYPE
    return None


@dataclass
class FileBudget:
    """What is left of one request's room for files."""

    files: int = MAX_FILES
    base64_bytes: int = FILES_MAX_BASE64
    pdf_pages: int = PDF_MAX_PAGES
    downloads: int = MAX_DOWNLOADS


@dataclass
class FileSelection:
    """Files of a question: the content blocks for Claude, and one line per file that is not sent."""

    blocks: list[dict[str, Any]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    pdf_pages: int = 0  # pages of the PDFs among ``blocks``, as counted when they were read (the input estimate)

    def skip(self, file: SlackFile, reason: str) -> None:
        self.skipped.append(f"{code(file.name)}: {reason}")

    def notice(self, shown: int = 10) -> str:
        """One line per file not sent (the first ``shown``), for the person who asked."""
        lines = [f"• {line}" for line in self.skipped[:shown]]
        if len(self.skipped) > shown:
            lines.append(f"• …and {len(self.skipped) - shown} more.")
        return "Not sent to Claude:\n" + "\n".join(lines)


def stored_outside_slack(file: SlackFile) -> str:
    """The line for a file kept elsewhere (a remote file, or a ``url_private`` off Slack's file host)."""
    try:
        host = urlsplit(file.url).hostname
    except ValueError:
        host = None
    return f"it is stored outside Slack ({host or 'no host'}), and I read only files uploaded to Slack."


def refusal_before_download(file: SlackFile, budget: FileBudget) -> str | None:
    """Why ``file`` is not fetched at all, judged from what Slack says of it, or None to fetch it."""
    if file.external:
        return stored_outside_slack(file)
    kind = file.kind
    if kind is None:
        return f"Claude reads images (PNG, JPEG, GIF, WebP), PDFs and text files, not {code(file.mimetype or '?')}."
    if file.size <= 0:  # remote files say 0; a hosted file with bytes never does
        return "Slack lists it as empty (0 bytes)."
    if budget.files <= 0:
        return f"only {MAX_FILES} files go with one question (the newest)."
    if budget.downloads <= 0:
        return f"I read at most {MAX_DOWNLOADS} files for one question, the newest first, and this one came after them."
    if kind == "image" and file.size > IMAGE_MAX_BYTES:
        return f"images may be up to {IMAGE_MAX_BYTES / 1_000_000:.2f} MB; this one is {file.size / 1_000_000:.1f} MB."
    if kind == "text" and file.size > TEXT_MAX_BYTES:
        return f"text files may be up to 1 MB; this one is {file.size / 1_000_000:.1f} MB."
    if kind != "text" and base64_size(file.size) > budget.base64_bytes:
        return "it does not fit in what is left of this question's 32 MB."
    return None


def content_block(file: SlackFile, data: bytes, budget: FileBudget, *, pages: int | None = None
                  ) -> tuple[dict[str, Any] | None, str]:
    """The content block for ``file``'s bytes, spending from ``budget``; (None, why not) when they do not fit.

    ``pages``: a PDF's pages, counted by a PDF reader (bot/slack/files.py); None when they could not be counted,
    and then the PDF counts as the PDF_MAX_PAGES a question may carry (never as one page)."""
    kind = file.kind
    if kind == "text":
        if len(data) > TEXT_MAX_BYTES:
            return None, "text files may be up to 1 MB."
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return None, "it is not UTF-8 text."
        if "\x00" in text:
            return None, "it is not text."
        budget.files -= 1
        end = "" if text.endswith("\n") else "\n"
        return {"type": "text", "text": f"<file name=\"{file.name}\">\n{text}{end}</file>"}, ""
    media_type = sniff_media_type(data)
    encoded = base64_size(len(data))
    if kind == "image":
        if media_type not in IMAGE_TYPES:
            return None, "its content is not a PNG, JPEG, GIF or WebP image."
        if encoded > IMAGE_MAX_BASE64:
            return None, f"images may be up to {IMAGE_MAX_BYTES / 1_000_000:.2f} MB."
    elif media_type != PDF_TYPE:
        return None, "its content is not a PDF."
    if encoded > budget.base64_bytes:
        return None, "it does not fit in what is left of this question's 32 MB."
    source = {"type": "base64", "media_type": media_type, "data": base64.b64encode(data).decode("ascii")}
    if kind == "image":
        budget.files -= 1
        budget.base64_bytes -= encoded
        return {"type": "image", "source": source}, ""
    if pages is None and PDF_MAX_PAGES > budget.pdf_pages:
        return None, (f"I could not count its pages, so it counts as {PDF_MAX_PAGES}: more than what is left of the "
                      f"{PDF_MAX_PAGES} PDF pages a question may have.")
    counted = PDF_MAX_PAGES if pages is None else pages
    if counted > budget.pdf_pages:
        return None, f"PDFs may have {PDF_MAX_PAGES} pages in all per question; this one has {pages}."
    budget.files -= 1
    budget.base64_bytes -= encoded
    budget.pdf_pages -= counted
    return {"type": "document", "source": source, "title": file.name[:100]}, ""
