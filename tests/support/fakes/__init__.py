"""Fakes of Slack and Anthropic for tests: real HTTP on 127.0.0.1, background threads."""

from .anthropic import FakeAnthropic
from .server import ThreadedServer
from .slack import FakeSlack

__all__ = ["FakeAnthropic", "FakeSlack", "ThreadedServer"]
