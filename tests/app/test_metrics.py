"""GET /metrics: Prometheus' text format, beside /healthz, for loopback clients or a bearer token; counters of the
requests that went through the real app; no user, channel, key or secret in any label."""

from __future__ import annotations

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.domain.roles import Role
from bot.metrics import BudgetUse, may_scrape
from tests.support.harness import API_KEY, BOT_TOKEN, SIGNING_SECRET, Harness, eventually

METRICS_TOKEN = "metrics-token-0123456789abcdef"


async def scrape(harness: Harness, **headers: str) -> tuple[int, str, str]:
    async with harness.http.get(f"{harness.url}/metrics", headers=headers) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """{(sample name, labels): value} of a scrape, parsed by prometheus_client's own parser."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(parsed: dict, metric: str, /, **labels: str) -> float:
    return parsed.get((metric, frozenset(labels.items())), 0.0)


async def test_metrics_count_what_went_through_the_app(harness: Harness) -> None:
    slack = harness.slack
    for user in ("UPOWER", "UVIEWER"):
        slack.add_user(user)
    await harness.grant("UPOWER", Role.POWER)
    await harness.mention("UPOWER", "hello")
    await harness.dm("UPOWER", "hello in a DM")
    await harness.mention("UVIEWER", "may I?")  # viewer: refused
    # a mention is acknowledged before it is answered: the failure below must meet the next request, not these
    await harness.settled_records(3, timeout=30)  # a loaded machine: the wait ends as soon as they are
    harness.anthropic.fail_next("invalid_request")  # not retried
    await harness.mention("UPOWER", "and again")
    await harness.settled_records(4, timeout=30)
    slack.fail_next("chat.postEphemeral", "channel_not_found")
    await harness.mention("UVIEWER", "still no")  # the refusal cannot be shown: a Slack API error
    await harness.settled_records(5, timeout=30)

    async def scraped() -> dict | None:
        parsed = samples((await scrape(harness))[2])
        slack_error = value(parsed, "claude_gate_slack_api_errors_total", method="chat_postephemeral",
                            kind="channel_not_found")
        return parsed if value(parsed, "claude_gate_answers_in_flight") == 0 and slack_error == 1 else None

    parsed = await eventually(scraped, timeout=30)
    status, content_type, text = await scrape(harness)
    assert status == 200 and content_type.startswith("text/plain") and "version=" in content_type
    assert value(parsed, "claude_gate_requests_total", surface="mention", outcome="admitted", reason="") == 2
    assert value(parsed, "claude_gate_requests_total", surface="dm", outcome="admitted", reason="") == 1
    assert value(parsed, "claude_gate_requests_total", surface="mention", outcome="refused",
                 reason="role_cannot_chat") == 2
    assert value(parsed, "claude_gate_answers_total", surface="mention", outcome="ok", kind="") == 1
    assert value(parsed, "claude_gate_answers_total", surface="mention", outcome="error", kind="invalid") == 1
    assert value(parsed, "claude_gate_anthropic_errors_total", kind="invalid") == 1
    assert value(parsed, "claude_gate_gate_seconds_count", surface="mention") == 4
    assert value(parsed, "claude_gate_first_text_seconds_count", surface="mention") == 1
    assert value(parsed, "claude_gate_first_text_seconds_count", surface="dm") == 1
    model = harness.runtime.settings.model_haiku  # the first model of role power
    tokens = {labels: v for (name, labels), v in parsed.items() if name == "claude_gate_tokens_total"}
    assert tokens and all(dict(labels)["role"] == "power" for labels in tokens)
    assert {dict(labels)["kind"] for labels in tokens} >= {"input", "output"}
    assert {dict(labels)["model"] for labels in tokens} == {model}
    assert sum(v for (name, _), v in parsed.items() if name == "claude_gate_estimated_cost_usd_total") > 0
    assert value(parsed, "claude_gate_record_backlog") == 0
    assert value(parsed, "process_resident_memory_bytes") > 0
    assert "# TYPE claude_gate_gate_seconds histogram" in text

    # No user, channel, key label or secret in any label value.
    label_values = {v for (_, labels) in parsed for _, v in labels}
    assert not [v for v in label_values if re.search(r"\b[UWCDG][A-Z0-9]{6,}\b", v)], label_values
    for secret in (API_KEY, BOT_TOKEN, SIGNING_SECRET, "default", "hello", "UPOWER", "UVIEWER", "C0001"):
        assert secret not in label_values
        assert not [line for line in text.splitlines() if not line.startswith("#") and secret in line.split(" ")[0]]


async def test_only_loopback_or_the_bearer_token_may_read_metrics(harness_factory) -> None:
    open_harness = await harness_factory()
    assert (await scrape(open_harness))[0] == 200  # a loopback client
    proxied = await scrape(open_harness, **{"X-Forwarded-For": "203.0.113.9"})
    assert proxied[0] == 403 and "METRICS_TOKEN" in proxied[2]  # relayed by a proxy: not a loopback client

    guarded = await harness_factory(metrics_token=METRICS_TOKEN)
    assert (await scrape(guarded))[0] == 200
    for wrong in ("Bearer nope", f"Basic {METRICS_TOKEN}", METRICS_TOKEN, f"Bearer {METRICS_TOKEN}x"):
        status, _, text = await scrape(guarded, Authorization=wrong, **{"X-Forwarded-For": "203.0.113.9"})
        assert status == 401 and "claude_gate" not in text, wrong
    status, _, text = await scrape(guarded, Authorization=f"Bearer {METRICS_TOKEN}",
                                   **{"X-Forwarded-For": "203.0.113.9"})
    assert status == 200 and "claude_gate_requests_total" in text


@pytest.mark.parametrize(("remote", "authorization", "forwarded", "token", "allowed"), [
    ("127.0.0.1", None, False, None, True),
    ("127.0.0.5", None, False, None, True),
    ("::1", None, False, None, True),
    ("::ffff:127.0.0.1", None, False, None, True),
    ("10.0.0.7", None, False, None, False),
    ("203.0.113.9", "Bearer t0ken-abc", False, None, False),  # no token configured: nothing to present
    ("203.0.113.9", "Bearer t0ken-abc", False, "t0ken-abc", True),
    ("203.0.113.9", "bearer t0ken-abc", False, "t0ken-abc", True),
    ("203.0.113.9", "Bearer t0ken-abd", False, "t0ken-abc", False),
    ("127.0.0.1", None, True, None, False),
    (None, None, False, None, False),
    ("not-an-address", None, False, None, False),
])
def test_who_may_scrape(remote, authorization, forwarded, token, allowed) -> None:
    assert may_scrape(remote, authorization, forwarded, token) is allowed


async def test_budget_gauges_come_from_the_budget_source_at_scrape_time(harness: Harness) -> None:
    reads = []

    async def budgets() -> list[BudgetUse]:
        reads.append(1)
        return [BudgetUse("org", "org", "month", 500.0, 125.0), BudgetUse("group", "design", "day", 20.0, 20.0),
                BudgetUse("role", "power", "day", 5.0)]

    harness.runtime.metrics.budget_source = budgets
    assert not reads  # nothing is read until Prometheus asks
    parsed = samples((await scrape(harness))[2])
    assert reads == [1]
    assert value(parsed, "claude_gate_budget_used_ratio", scope="org", name="org", period="month") == 0.25
    assert value(parsed, "claude_gate_budget_used_ratio", scope="group", name="design", period="day") == 1.0
    assert value(parsed, "claude_gate_budget_limit_usd", scope="role", name="power", period="day") == 5.0
    assert ("claude_gate_budget_spent_usd", frozenset({("scope", "role"), ("name", "power"), ("period", "day")})) \
        not in parsed

    async def database_away() -> list[BudgetUse]:
        raise ConnectionRefusedError

    harness.runtime.metrics.budget_source = database_away
    status, _, text = await scrape(harness)
    assert status == 200 and "# TYPE claude_gate_requests_total counter" in text  # the rest is still served


PROXY_HEADERS = [("Forwarded", "for=203.0.113.9"), ("Via", "1.1 nginx"), ("X-Real-IP", "203.0.113.9"),
                 ("True-Client-IP", "203.0.113.9"), ("CF-Connecting-IP", "203.0.113.9"),
                 ("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Host", "metrics.example.com"),
                 ("X-Forwarded-Proto", "https"), ("x-forwarded-port", "443"), ("X-Client-IP", "203.0.113.9")]


async def test_a_request_with_any_proxy_header_needs_the_token(harness_factory) -> None:
    """A proxy on the same host connects from loopback: whatever header it adds, it is not a loopback client."""
    open_harness = await harness_factory()
    guarded = await harness_factory(metrics_token=METRICS_TOKEN)
    for name, value in PROXY_HEADERS:
        status, _, text = await scrape(open_harness, **{name: value})
        assert status == 403 and "proxy" in text and "claude_gate" not in text, name
        status, _, text = await scrape(guarded, **{name: value})
        assert status == 401 and "claude_gate" not in text, name
        status, _, text = await scrape(guarded, Authorization=f"Bearer {METRICS_TOKEN}", **{name: value})
        assert status == 200 and "claude_gate_requests_total" in text, name
    assert (await scrape(open_harness, **{"X-Request-Id": "abc", "User-Agent": "Prometheus/2.53"}))[0] == 200
