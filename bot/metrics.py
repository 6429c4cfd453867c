"""Prometheus metrics of one process, served at GET /metrics (bot/runtime.py) in Prometheus' text format.

The request path only increments counters and observes histograms (a dictionary lookup and a lock each); gauges
that need reading something (the record backlog, the budgets) are computed when Prometheus scrapes. Labels are bounded
sets — surface, outcome, refusal reason, error kind, model, role, budget scope — never a Slack user, a channel, a
key's label or any text a person wrote.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from bot.services.conversation.observer import QuietObserver

log = logging.getLogger(__name__)

PREFIX = "claude_gate"
# The gate is milliseconds (bench/: p50 ≈ 2 ms on SQLite); the buckets resolve that, and a database in trouble.
GATE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# First text: the model's own time to first token dominates (a fraction of a second to many seconds).
FIRST_TEXT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 60.0)
BUDGET_READ_SECONDS = 2.0  # a scrape never waits longer than this for the budgets


@dataclass(frozen=True)
class BudgetUse:
    """One pooled, org or role budget as a gauge shows it: never a person's own budget."""

    scope: str  # "org", "group" or "role"
    name: str  # "org", the group's handle (or ID), the role
    period: str  # "day" or "month"
    limit_usd: float
    spent_usd: float | None = None  # None where spend is per person (a role's per-person budget)


# build_app sets ``Runtime.metrics.budget_source`` (bot.app.pooled_budget_uses): every org, group and role budget
# with its spend this period (US dollars); a person's own budget is never passed. It runs at scrape time only.
BudgetSource = Callable[[], Awaitable[list[BudgetUse]]]


class Metrics(QuietObserver):
    """The metrics of one Claude Gate process, in a registry of its own (tests build many apps in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(f"{PREFIX}_requests", "Chat requests by surface and gate outcome "
                                "(admitted, refused with a reason, duplicate Slack delivery)",
                                ["surface", "outcome", "reason"], registry=r)
        self.answers = Counter(f"{PREFIX}_answers", "Admitted requests by how the answer ended (ok, or error kind)",
                               ["surface", "outcome", "kind"], registry=r)
        self.gate_seconds = Histogram(f"{PREFIX}_gate_seconds", "Time the gate took to admit or refuse a request",
                                      ["surface"], buckets=GATE_BUCKETS, registry=r)
        self.first_text_seconds = Histogram(
            f"{PREFIX}_first_text_seconds", "From the request reaching the gate to its first text in Slack",
            ["surface"], buckets=FIRST_TEXT_BUCKETS, registry=r)
        self.tokens = Counter(f"{PREFIX}_tokens", "Tokens of finished answers by model, role and kind "
                              "(input, output, cache_read, cache_write)", ["model", "role", "kind"], registry=r)
        self.cost = Counter(f"{PREFIX}_estimated_cost_usd", "Estimated cost of finished answers, US dollars",
                            ["model", "role"], registry=r)
        self.in_flight = Gauge(f"{PREFIX}_answers_in_flight", "Answers being generated in this process",
                               registry=r)
        self.record_backlog = Gauge(f"{PREFIX}_record_backlog", "Request records waiting for the database (held "
                                    "refusals and finished answers; past its bound new requests fail closed)",
                                    registry=r)
        self.budget_spent = Gauge(f"{PREFIX}_budget_spent_usd", "Spend in the current period of each pooled or org "
                                  "budget", ["scope", "name", "period"], registry=r)
        self.budget_limit = Gauge(f"{PREFIX}_budget_limit_usd", "Limit of each pooled, org and role budget "
                                  "(a role's is per person)", ["scope", "name", "period"], registry=r)
        self.budget_used = Gauge(f"{PREFIX}_budget_used_ratio", "Share of each pooled or org budget spent in the "
                                 "current period (1 = exhausted)", ["scope", "name", "period"], registry=r)
        self.slack_errors = Counter(f"{PREFIX}_slack_api_errors", "Slack Web API calls that failed, by method and "
                                    "kind (Slack's error code, ratelimited, connection, timeout)",
                                    ["method", "kind"], registry=r)
        self.anthropic_errors = Counter(f"{PREFIX}_anthropic_errors", "Calls to Anthropic that failed, by kind",
                                        ["kind"], registry=r)
        ProcessCollector(registry=r)  # CPU seconds, resident memory, open files of this process
        self.budget_source: BudgetSource | None = None
        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}

    def _of(self, metric: Counter | Histogram, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once per label set (``labels`` validates and locks at every call;
        the label sets are bounded, see above)."""
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    # -- the request path: increments only ----------------------------------------------------------------------

    def gate_decided(self, surface: str, outcome: str, reason: str, seconds: float) -> None:
        self._of(self.requests, surface, outcome, reason).inc()
        self._of(self.gate_seconds, surface).observe(seconds)

    def answer_began(self) -> None:
        self.in_flight.inc()

    def first_text(self, surface: str, seconds: float) -> None:
        self._of(self.first_text_seconds, surface).observe(seconds)

    def answer_finished(self, *, surface: str, model: str, role: str, error_kind: str | None, input_tokens: int,
                        output_tokens: int, cost_usd: float, cache_read_tokens: int = 0,
                        cache_write_tokens: int = 0) -> None:
        self.in_flight.dec()
        self._of(self.answers, surface, "error" if error_kind else "ok", error_kind or "").inc()
        for kind, count in (("input", input_tokens), ("output", output_tokens), ("cache_read", cache_read_tokens),
                            ("cache_write", cache_write_tokens)):
            if count:
                self._of(self.tokens, model, role, kind).inc(count)
        if cost_usd:
            self._of(self.cost, model, role).inc(cost_usd)

    def slack_error(self, method: str, kind: str) -> None:
        self._of(self.slack_errors, method, kind).inc()

    def anthropic_error(self, kind: str) -> None:
        self._of(self.anthropic_errors, kind).inc()

    # -- the scrape --------------------------------------------------------------------------------------------

    def watch_record_backlog(self, length: Callable[[], int]) -> None:
        self.record_backlog.set_function(lambda: float(length()))

    async def render(self) -> bytes:
        """The text exposition, after reading what is read at scrape time (the budgets)."""
        if self.budget_source is not None:
            try:
                async with asyncio.timeout(BUDGET_READ_SECONDS):
                    budgets = await self.budget_source()
            except Exception as exc:  # the database may be away: the other metrics are still served
                log.warning("metrics: budgets not read: %s", type(exc).__name__)
            else:
                self._set_budgets(budgets)
        return generate_latest(self.registry)

    def _set_budgets(self, budgets: list[BudgetUse]) -> None:
        for gauge in (self.budget_spent, self.budget_limit, self.budget_used):
            gauge.clear()  # a budget removed since the last scrape disappears
        for budget in budgets:
            labels = (budget.scope, budget.name, budget.period)
            self.budget_limit.labels(*labels).set(budget.limit_usd)
            if budget.spent_usd is not None:
                self.budget_spent.labels(*labels).set(budget.spent_usd)
                self.budget_used.labels(*labels).set(budget.spent_usd / budget.limit_usd if budget.limit_usd > 0
                                                     else 1.0)


CONTENT_TYPE = CONTENT_TYPE_LATEST


# Headers a proxy adds to what it relays: a request carrying any of them came through one, whatever its address
PROXY_HEADERS = frozenset({"forwarded", "via", "x-real-ip", "true-client-ip", "cf-connecting-ip", "x-client-ip",
                           "x-cluster-client-ip", "fastly-client-ip"})


def relayed(header_names: Iterable[str]) -> bool:
    """Whether a request carries a proxy's header (Forwarded, Via, X-Real-IP, True-Client-IP, CF-Connecting-IP,
    any X-Forwarded-*…): then it is not a loopback client, even from a proxy on this host."""
    for name in header_names:
        lowered = name.lower()
        if lowered in PROXY_HEADERS or lowered.startswith("x-forwarded-"):
            return True
    return False


def may_scrape(remote: str | None, authorization: str | None, forwarded: bool, token: str | None) -> bool:
    """Loopback clients may read /metrics; anyone else only with `Authorization: Bearer $METRICS_TOKEN` (compared
    in constant time). A request relayed by a proxy (``forwarded``: see ``relayed``) is not a loopback client,
    wherever the proxy runs: costs are not public."""
    if token:
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode()):
            return True
    if forwarded or not remote:
        return False
    try:
        address = ipaddress.ip_address(remote.split("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback
