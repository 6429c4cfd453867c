"""A TCP proxy between `serve` processes and PostgreSQL, to stage a database outage: ``cut()`` stops listening and
drops every open connection (the processes see the server vanish), ``restore()`` listens again on the same port."""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy.engine import URL, make_url

from tests.support.processes import free_port


class DatabaseProxy:
    def __init__(self, database_url: str) -> None:
        self.target = make_url(database_url)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        proxied: URL = self.target.set(host="127.0.0.1", port=self.port)
        return proxied.render_as_string(hide_password=False)

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._link, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()
        self._server = None

    async def _link(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(self.target.host or "127.0.0.1",
                                                                         self.target.port or 5432)
        except OSError:
            client_writer.transport.abort()
            return
        self._links |= {client_writer, server_writer}
        await asyncio.gather(self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer))
        self._links -= {client_writer, server_writer}

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()  # one side gone: the other goes too

    async def close(self) -> None:
        if self._server is not None:
            await self.cut()
