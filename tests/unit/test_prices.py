"""Recorded costs equal Anthropic's list prices: the numbers below are written from Anthropic's pricing pages
(platform.claude.com/docs/en/about-claude/pricing), never read from the product's table, and the product's table
(genai-prices' shipped data, MODEL_PRICES on top) must give the same micro-dollars."""

from __future__ import annotations

from datetime import date

import pytest

from bot.config import Settings
from bot.domain.budgets import reservation_micros
from bot.domain.pricing import Price, Rates, cost_micros, estimated_cost_micros, price_of
from bot.price_source import list_prices, override_price, priced_model_ids, with_overrides
from bot.sdk_models import default_model_ids, sdk_model_ids

M = 1_000_000

# USD per million tokens: input, output, 5-minute cache write, 1-hour cache write, cache read
LIST_PRICES = {
    "claude-haiku-5-5": (0.10, 0.50, 0.125, 0.20, 0.01),
    "claude-sonnet-5-5": (2, 10, 2.5, 4, 0.10),
    "claude-opus-5-5": (4, 20, 5, 8, 0.20),
    "claude-fable-5-1": (10, 50, 12.5, 20, 0.25),
    "claude-opus-4-1": (15, 75, 18.75, 30, 1.5),
    "claude-haiku-4-5": (1, 5, 1.25, 2, 0.10),
}


def micros(usd_per_million: float, tokens: int) -> float:
    return usd_per_million * tokens  # $/M × tokens = micro-dollars


@pytest.mark.parametrize("model", sorted(LIST_PRICES))
def test_each_family_costs_what_anthropic_lists(model: str) -> None:
    inp, out, write_5m, write_1h, read = LIST_PRICES[model]
    price = price_of(model, list_prices())
    assert price is not None
    tokens = dict(input_tokens=3_000, output_tokens=500, cache_write_tokens=2_000, cache_read_tokens=40_000,
                  cache_write_1h_tokens=1_000)
    expected = (micros(inp, 3_000) + micros(out, 500) + micros(write_5m, 2_000) + micros(read, 40_000)
                + micros(write_1h, 1_000))
    assert cost_micros(price, **tokens) == pytest.approx(expected, abs=1)


def test_a_haiku_answer_of_500_tokens_costs_what_anthropic_charges() -> None:
    """The bug this table fixes: $0.0025 recorded where Anthropic charges $0.00025."""
    assert estimated_cost_micros("claude-haiku-5-5", 0, 500, list_prices()) == 250


def test_a_long_haiku_prompt_bills_every_token_at_the_higher_tier() -> None:
    table = list_prices()
    short = estimated_cost_micros("claude-haiku-5-5", 100_000, 1_000, table)
    long = estimated_cost_micros("claude-haiku-5-5", 100_001, 1_000, table)
    assert short == micros(0.10, 100_000) + micros(0.50, 1_000)
    assert long == pytest.approx(micros(0.50, 100_001) + micros(2.50, 1_000), abs=1)  # 5× every token
    # cached tokens count toward the threshold: 60k input + 50k read is a 110k prompt
    cached = estimated_cost_micros("claude-haiku-5-5", 60_000, 0, table, cache_read_tokens=50_000)
    assert cached == pytest.approx(micros(0.50, 60_000) + micros(0.05, 50_000), abs=1)


def test_a_reservation_whose_bound_passes_the_threshold_is_at_the_higher_tier() -> None:
    price = price_of("claude-haiku-5-5", list_prices())
    assert price is not None
    below = reservation_micros(price, 90_000, 1_000)
    above = reservation_micros(price, 120_000, 1_000)
    assert below == pytest.approx(micros(0.125, 90_000) + micros(0.50, 1_000), abs=1)  # cache writes: 1.25×
    assert above == pytest.approx(micros(0.625, 120_000) + micros(2.50, 1_000), abs=1)
    # and the real cost of any prompt within the bound is never above it
    for prompt in (50_000, 100_000, 100_001, 120_000):
        real = cost_micros(price, input_tokens=0, output_tokens=1_000, cache_write_tokens=prompt)
        assert real <= reservation_micros(price, 120_000, 1_000)


def test_cache_rates_are_each_models_own() -> None:
    table = list_prices()
    sonnet, fable = price_of("claude-sonnet-5-5", table), price_of("claude-fable-5-1", table)
    assert sonnet is not None and fable is not None
    assert sonnet.base.cache_read == 100_000  # $0.10, 5 % of input, not the usual 10 %
    assert fable.base.cache_read == 250_000  # $0.25, 2.5 % of input


def test_dated_snapshots_families_and_unpriced_models() -> None:
    table = list_prices()
    assert price_of("claude-haiku-5-5-20261001", table) == price_of("claude-haiku-5-5", table)
    # genai-prices' own matching: IDs of older models that are not its keys still take their own price
    for model, (inp, out) in {"claude-opus-4-20250514": (15, 75), "claude-sonnet-4-20250514": (3, 15),
                              "claude-3-5-haiku-20241022": (0.8, 4)}.items():
        price = price_of(model, table)
        assert price is not None and (price.base.input, price.base.output) == (inp * M, out * M), model
    assert price_of("claude-opus-9-9", table) == price_of("claude-opus-5-5", table)  # its family's newest
    assert price_of("claude-nothing-1", table) is None


def test_the_default_of_each_alias_is_the_newest_model_the_sdk_and_the_source_both_know() -> None:
    both = set(sdk_model_ids()) & priced_model_ids()
    defaults = default_model_ids()
    for alias, model in defaults.items():
        assert model in both or not any(m.startswith(f"claude-{alias}-") for m in both), (alias, model)


def test_a_dated_override_applies_from_its_day_and_the_source_before_it() -> None:
    periods = override_price("claude-sonnet-5-5", {"input": 2, "output": 10, "cache_read": "0.05",
                                                    "from": "2027-01-01"})
    table = with_overrides(list_prices(), {"claude-sonnet-5-5": periods})
    before = estimated_cost_micros("claude-sonnet-5-5", 0, 0, table, cache_read_tokens=1_000_000,
                                   on=date(2026, 12, 31))
    after = estimated_cost_micros("claude-sonnet-5-5", 0, 0, table, cache_read_tokens=1_000_000,
                                  on=date(2027, 1, 1))
    assert (before, after) == (100_000, 50_000)
    # undated means today, and today (before the override's day) is the source's price, not the future one
    today = estimated_cost_micros("claude-sonnet-5-5", 0, 0, table, cache_read_tokens=1_000_000)
    assert today == (100_000 if date.today() < date(2027, 1, 1) else 50_000)


def test_rates_round_up_and_a_cheaper_tier_still_reserves_the_worst_case() -> None:
    assert Rates.usd("0.0000001", 1).input == 1  # a fraction of a micro-dollar per million is never cheapened
    (cheap_tier,) = override_price("m", {"input": 2, "output": 10, "tier_above": 1000, "tier": {"input": 1,
                                                                                                  "output": 5}})
    worst = reservation_micros(cheap_tier, 5_000, 100)
    for prompt in (500, 1000, 5_000):  # a prompt below the threshold is billed at the dearer base rates
        assert cost_micros(cheap_tier, input_tokens=0, output_tokens=100, cache_write_tokens=prompt) <= worst


def test_an_override_replaces_the_whole_entry_in_every_form() -> None:
    pair = override_price("m", [3, 15])
    assert pair == (Price(Rates.usd(3, 15)),) and pair[0].base.cache_write_5m == 3_750_000  # 1.25× input
    full = override_price("m", {"input": 1, "output": 2, "cache_write_5m": 3, "cache_write_1h": 4, "cache_read": 5,
                                "web_search": 10, "tier_above": 1000, "tier": {"input": 6, "output": 7}})
    assert full[0].base == Rates(M, 2 * M, 3 * M, 4 * M, 5 * M) and full[0].web_search_micros == 10_000
    assert full[0].rates(1001) == Rates.usd(6, 7) and full[0].rates(1000).input == M
    opus = with_overrides(list_prices(), {"claude-opus-4-6": pair})["claude-opus-4-6"]
    assert opus == pair  # the source's two dated periods are gone


@pytest.mark.parametrize(("value", "says"), [
    ({"input": 1}, "needs an input and an output price"),
    ({"input": 1, "output": -2}, "from 0 to 10000"),
    ({"input": 1, "output": "two"}, "must be an amount"),
    ({"input": 1, "output": 2, "from": "soon"}, "YYYY-MM-DD"),
    ({"input": 1, "output": 2, "tier_above": 100}, "needs tier_above (prompt tokens) and tier"),
    ({"input": 1, "output": 2, "cached": 1}, "unknown fields ['cached']"),
    ([1, 2, 3], "must be [input, output] or an object"),
])
def test_a_bad_override_is_one_line_naming_what_is_wrong(value: object, says: str) -> None:
    with pytest.raises(ValueError, match=r".*") as raised:
        override_price("claude-x", value)
    assert says in str(raised.value) and "\n" not in str(raised.value)


def test_model_prices_from_the_environment_and_an_alias_names_its_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_PRICES", '{"haiku": [1000, 2000], "claude-opus-5-5": {"input": 1, "output": 2}}')
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    table = settings.prices
    assert price_of(settings.model_haiku, table) == Price(Rates.usd(1000, 2000))  # what MODEL_HAIKU points at
    assert price_of("claude-opus-5-5", table) == Price(Rates.usd(1, 2))
    assert settings.prices is table  # built once
