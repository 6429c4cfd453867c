"""Fetching the files of a question from Slack (``url_private`` with the bot token), into memory only.

The token goes only to Slack's file host: a ``url_private`` elsewhere (a remote file's ``external_url``, a
loopback or private address) is never fetched, and no redirect off Slack's file host is followed.
Without a valid token Slack answers ``200`` with an HTML login page, not an error: the content type and the size
are checked before any byte goes to Claude. Downloads of every conversation of the process share one memory cap.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
from yarl import URL

from bot.domain.files import (
    IMAGE_MAX_BYTES,
    PDF_MAX_PAGES,
    PDF_TYPE,
    TEXT_MAX_BYTES,
    FileBudget,
    FileSelection,
    SlackFile,
    content_block,
    refusal_before_download,
    slack_file,
    sniff_media_type,
    stored_outside_slack,
)

log = logging.getLogger(__name__)

DOWNLOAD_MEMORY_CAP = 96 * 1024 * 1024  # bytes of files being downloaded at once in this process
DOWNLOAD_WAIT_SECONDS = 20.0  # how long a file waits for room under the cap before it is skipped
DOWNLOAD_TIMEOUT_SECONDS = 30.0
CHUNK = 256 * 1024
FILE_KIND_LIMITS = {"image": IMAGE_MAX_BYTES, "text": TEXT_MAX_BYTES, "pdf": 32 * 1024 * 1024}
SLACK_FILE_HOST = URL("https://files.slack.com")
MAX_REDIRECTS = 3  # hops followed within Slack's file host; one off it ends the download

Origin = tuple[str, str, int]  # scheme, host, port
PDF_COUNT_SECONDS = 5.0  # a PDF whose pages are not counted by then counts as PDF_MAX_PAGES
# PDFs are parsed off the event loop, two at a time in the whole process: a crafted file that keeps a parser busy
# past its time goes on in its thread (a thread cannot be stopped) but holds one of the two, not the loop
_PDF_PARSERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pdf-pages")


def _count_pages(data: bytes) -> int:
    from pypdf import PdfReader  # here, on the first PDF: 167 modules and about 19 MiB that most processes never use

    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:  # its page tree cannot be walked; the /Count it declares is not to be trusted
        raise ValueError("encrypted PDF")
    return len(reader.pages)  # pypdf walks the page tree, wherever its objects are (object streams included)


async def pdf_pages(data: bytes, *, timeout: float = PDF_COUNT_SECONDS) -> int | None:
    """A PDF's pages as a reader counts them, or None when it cannot be parsed within ``timeout`` seconds (the
    caller then counts it as PDF_MAX_PAGES). The raw bytes cannot be counted: PDF 1.5+ writers put the page
    objects in compressed object streams."""
    try:
        return await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(_PDF_PARSERS, _count_pages, data),
                                      timeout)
    except TimeoutError:
        log.info("a PDF's pages were not counted within %.0f s; it counts as %d pages", timeout, PDF_MAX_PAGES)
    except Exception as exc:  # pypdf raises many kinds on a damaged file
        log.info("a PDF's pages could not be counted (%s); it counts as %d pages", type(exc).__name__, PDF_MAX_PAGES)
    return None


def origin_of(url: str | URL) -> Origin | None:
    """(scheme, host, port) of an absolute http(s) URL without user info; None for anything else."""
    try:
        url = URL(url)
        if not url.absolute or url.scheme not in ("https", "http") or not url.host or url.port is None or url.user:
            return None
    except ValueError:
        return None
    return url.scheme, url.host.lower(), url.port


def file_hosts(api_url: str) -> frozenset[Origin]:
    """Where the bot token may be sent for a file: https://files.slack.com, the Web API's own origin
    (``SLACK_API_URL``: GovSlack, a test server), and ``files.`` + the API's host name (GovSlack's file host)."""
    hosts = {origin_of(SLACK_FILE_HOST)}
    api = URL(api_url)
    hosts.add(origin_of(api))
    if api.host:
        try:
            ipaddress.ip_address(api.host)
        except ValueError:  # a name, not an address
            hosts.add(origin_of(api.with_host(f"files.{api.host}")))
    return frozenset(host for host in hosts if host is not None)


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
    def __init__(self, session_of: Any, token: str, *, hosts: frozenset[Origin],
                 memory: DownloadMemory | None = None) -> None:
        self._session_of = session_of  # the Slack client: its aiohttp session is reused when it has one
        self.token = token
        self.hosts = hosts  # file_hosts(SLACK_API_URL): the only places the token goes
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
            if reason is None and origin_of(file.url) not in self.hosts:
                reason = stored_outside_slack(file)
            if reason is not None:
                selection.skip(file, reason)
                continue
            budget.downloads -= 1  # whatever comes of it
            try:
                data = await self.download(file)
            except FileRefused as exc:
                selection.skip(file, str(exc))
                continue
            pages = await pdf_pages(data) if file.kind == "pdf" and sniff_media_type(data) == PDF_TYPE else None
            block, reason = content_block(file, data, budget, pages=pages)
            if block is None:
                selection.skip(file, reason)
            else:
                selection.blocks.append(block)
                selection.names.append(file.name)
        selection.pdf_pages = PDF_MAX_PAGES - budget.pdf_pages
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
        shared: aiohttp.ClientSession | None = getattr(self._session_of, "session", None)
        own = shared is None
        session = aiohttp.ClientSession() if shared is None else shared
        try:
            async with asyncio.timeout(DOWNLOAD_TIMEOUT_SECONDS):
                return await self._get_from_slack(session, file, limit)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("could not download file %s: %s", file.id, type(exc).__name__)
            raise FileRefused("I could not download it from Slack; try again.") from None
        finally:
            if own:
                await session.close()

    async def _get_from_slack(self, session: aiohttp.ClientSession, file: SlackFile, limit: int) -> bytes:
        """GET ``file.url`` with the token, following redirects only while they stay on Slack's file host."""
        url = URL(file.url)
        for _hop in range(MAX_REDIRECTS + 1):
            if origin_of(url) not in self.hosts:
                log.warning("file %s: a redirect off Slack's file host (to %s), not followed", file.id, url.host)
                raise FileRefused(f"Slack redirected me to {url.host or 'another host'} for it, and I send my Slack "
                                  "token only to Slack's file host.")
            async with session.get(url, headers={"Authorization": f"Bearer {self.token}"},
                                   allow_redirects=False) as response:
                if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                    url = response.url.join(URL(response.headers["Location"]))
                    continue
                return await self._body(response, file, limit)
        raise FileRefused("Slack redirected me too many times for it.")

    async def _body(self, response: aiohttp.ClientResponse, file: SlackFile, limit: int) -> bytes:
        """The file's bytes from Slack's answer, refused when it is not the file or too large."""
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
