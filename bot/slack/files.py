"""Fetching the files of a question from Slack (``url_private`` with the bot token), into memory only.

Without a valid token Slack answers ``200`` with an HTML login page, not an error: the content type and the size
are checked before any byte goes to Claude. Downloads of every conversation of the process share one memory cap.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import aiohttp

from bot.domain.files import (
    IMAGE_MAX_BYTES,
    TEXT_MAX_BYTES,
    FileBudget,
    FileSelection,
    SlackFile,
    content_block,
    refusal_before_download,
    slack_file,
)

log = logging.getLogger(__name__)

DOWNLOAD_MEMORY_CAP = 96 * 1024 * 1024  # bytes of files being downloaded at once in this process
DOWNLOAD_WAIT_SECONDS = 20.0  # how long a file waits for room under the cap before it is skipped
DOWNLOAD_TIMEOUT_SECONDS = 30.0
CHUNK = 256 * 1024
FILE_KIND_LIMITS = {"image": IMAGE_MAX_BYTES, "text": TEXT_MAX_BYTES, "pdf": 32 * 1024 * 1024}


class FileRefused(Exception):
    """A file that is not sent; the message is the one-line reason."""


class DownloadMemory:
    """A process-wide cap on the bytes of files held while downloading."""

    def __init__(self, cap: int = DOWNLOAD_MEMORY_CAP) -> None:
        self.cap = cap
        self.in_use = 0
        self._changed = asyncio.Condition()

    async def reserve(self, size: int, *, wait: float = DOWNLOAD_WAIT_SECONDS) -> None:
        size = min(size, self.cap)
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self.in_use + size <= self.cap), wait)
            except TimeoutError:
                raise FileRefused("too many files are being read right now; ask again in a minute.") from None
            self.in_use += size

    async def release(self, size: int) -> None:
        async with self._changed:
            self.in_use -= min(size, self.cap)
            self._changed.notify_all()


class FileFetcher:
    def __init__(self, session_of: Any, token: str, memory: DownloadMemory | None = None) -> None:
        self._session_of = session_of  # the Slack client: its aiohttp session is reused when it has one
        self.token = token
        self.memory = memory or DownloadMemory()

    async def select(self, file_objects: Iterable[Any], *, allowed: bool, role: str) -> FileSelection:
        """The files of a question, newest first, as content blocks within one request's budget."""
        selection, budget = FileSelection(), FileBudget()
        files = [f for f in (slack_file(obj) for obj in file_objects) if f is not None]
        seen: set[str] = set()
        for file in files:
            if file.id in seen:
                continue
            seen.add(file.id)
            if not allowed:
                selection.skip(file, f"your role *{role}* may not send files to Claude.")
                continue
            reason = refusal_before_download(file, budget)
            if reason is not None:
                selection.skip(file, reason)
                continue
            try:
                data = await self.download(file)
            except FileRefused as exc:
                selection.skip(file, str(exc))
                continue
            block, reason = content_block(file, data, budget)
            if block is None:
                selection.skip(file, reason)
            else:
                selection.blocks.append(block)
                selection.names.append(file.name)
        return selection

    async def download(self, file: SlackFile) -> bytes:
        limit = FILE_KIND_LIMITS.get(file.kind or "", TEXT_MAX_BYTES)
        reserved = min(max(file.size, 1), limit)
        await self.memory.reserve(reserved)
        try:
            return await self._get(file, limit)
        finally:
            await self.memory.release(reserved)

    async def _get(self, file: SlackFile, limit: int) -> bytes:
        session = getattr(self._session_of, "session", None)
        own = session is None
        if own:
            session = aiohttp.ClientSession()
        try:
            async with session.get(file.url, headers={"Authorization": f"Bearer {self.token}"},
                                   timeout=aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT_SECONDS)) as response:
                if response.status != 200:
                    raise FileRefused(f"Slack would not let me read it (HTTP {response.status}); is it shared in a "
                                      "channel I am in?")
                if response.content_type == "text/html" and file.mimetype != "text/html":
                    raise FileRefused("Slack answered with a login page instead of the file: I may not read it.")
                if (response.content_length or 0) > limit:
                    raise FileRefused("it is larger than I can send.")
                data = bytearray()
                async for chunk in response.content.iter_chunked(CHUNK):
                    data += chunk
                    if len(data) > limit:
                        raise FileRefused("it is larger than I can send.")
                return bytes(data)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("could not download file %s: %s", file.id, type(exc).__name__)
            raise FileRefused("I could not download it from Slack; try again.") from None
        finally:
            if own:
                await session.close()
