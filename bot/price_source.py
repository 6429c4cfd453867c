"""Anthropic's list prices from genai-prices' shipped data (Pydantic's maintained price table), as the integer
micro-dollar table of bot/domain/pricing.py, built once per process.

Only the data the installed package ships is read: no update call, no network. genai-prices' own price function
is never called on the request path (it costs about 0.25 ms a call); its numbers are read into `Price` rows here
once, with each model's tiers, cache rates, web-search fee and effective dates. MODEL_PRICES (bot/config.py) goes
on top. Outside the domain, like bot/sdk_models.py: this reads an installed package.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from bot.domain.models import newest_known_models
from bot.domain.pricing import Price, Rates, rate_micros

PROVIDER = "anthropic"


def _base_and_tier(value: Any) -> tuple[Decimal | None, int | None, Decimal | None]:
    """A genai-prices amount (Decimal, TieredPrices or None) → (base, tier start, tier price)."""
    if value is None or isinstance(value, Decimal):
        return value, None, None
    tiers = sorted(value.tiers, key=lambda tier: tier.start)
    if not tiers:
        return value.base, None, None
    top = tiers[-1]  # Anthropic bills a long prompt's every token at one higher rate; the highest tier is the bound
    return value.base, int(tiers[0].start), top.price


def price_of_model_price(model_price: Any, *, since: date | None, context_window: int | None) -> Price | None:
    """One genai-prices ModelPrice → a Price; None when it has no input or output rate (not a token price)."""
    fields = {name: _base_and_tier(getattr(model_price, key, None)) for name, key in (
        ("input", "input_mtok"), ("output", "output_mtok"), ("cache_write_5m", "cache_write_mtok"),
        ("cache_write_1h", "cache_write_1h_mtok"), ("cache_read", "cache_read_mtok"))}
    if fields["input"][0] is None or fields["output"][0] is None:
        return None
    base = Rates.usd(fields["input"][0], fields["output"][0], cache_write_5m=fields["cache_write_5m"][0],
                     cache_write_1h=fields["cache_write_1h"][0], cache_read=fields["cache_read"][0])
    starts = {start for _, start, _ in fields.values() if start is not None}
    tier = None
    tier_above = min(starts) if starts else None
    if tier_above is not None:
        def tiered(name: str) -> Decimal | None:
            value, start, higher = fields[name]
            return higher if start is not None else value

        tier = Rates.usd(tiered("input") or 0, tiered("output") or 0, cache_write_5m=tiered("cache_write_5m"),
                         cache_write_1h=tiered("cache_write_1h"), cache_read=tiered("cache_read"))
    searches = getattr(model_price, "web_searches_kcount", None)  # USD per 1,000 searches
    return Price(base, tier_above, tier, -(-rate_micros(searches) // 1000) if searches else 0, since, context_window)


def _periods(model: Any) -> tuple[Price, ...]:
    """A genai-prices ModelInfo's token prices, oldest first (a time-of-day price is not Anthropic's and is left)."""
    entries = model.prices if isinstance(model.prices, list) else [model.prices]
    periods = []
    for entry in entries:
        model_price, constraint = (entry.prices, entry.constraint) if hasattr(entry, "constraint") else (entry, None)
        if constraint is not None and not hasattr(constraint, "start_date"):
            continue
        since = constraint.start_date if constraint is not None else None
        price = price_of_model_price(model_price, since=since, context_window=model.context_window)
        if price is not None:
            periods.append(price)
    return tuple(sorted(periods, key=lambda p: p.since or date.min))


MAX_MATCHED = 1_000  # model IDs remembered by a PriceBook's matching (IDs are few; the bound keeps it so)


class PriceBook(Mapping[str, tuple[Price, ...]]):
    """The price table by model ID, and for an ID it does not hold as a key, genai-prices' own matching rules (a
    dated snapshot, a ``-latest`` alias, ``claude-opus-4-20250514`` for ``claude-opus-4-0``): the matched model's
    entry, remembered per ID. Read-only."""

    def __init__(self, table: Mapping[str, tuple[Price, ...]], matches: Callable[[str], str | None]) -> None:
        self._table = dict(table)
        self._matches = matches
        self._matched: dict[str, str | None] = {}

    def __getitem__(self, key: str) -> tuple[Price, ...]:
        if key in self._table:
            return self._table[key]
        if key not in self._matched:
            if len(self._matched) >= MAX_MATCHED:
                self._matched.clear()
            self._matched[key] = self._matches(key) if key.startswith("claude-") else None
        target = self._matched[key]
        if target is None or target not in self._table:
            raise KeyError(key)
        return self._table[target]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    def with_entries(self, entries: Mapping[str, tuple[Price, ...]]) -> PriceBook:
        return PriceBook(entries, self._matches)


@functools.cache
def _source_models() -> tuple[Any, ...]:
    """genai-prices' Anthropic models (ModelInfo), in its order; imported once, on first use."""
    from genai_prices.data import providers

    return tuple(next(p for p in providers if p.id == PROVIDER).models)


def _source_match(model_id: str) -> str | None:
    """The genai-prices model whose match rules take ``model_id``, in the source's order (its first match)."""
    return next((model.id for model in _source_models() if model.is_match(model_id)), None)


@functools.cache
def list_prices() -> PriceBook:
    """Anthropic's prices by model ID as the installed genai-prices ships them, plus each family's newest model
    under the family's name (for a newer ID nobody priced yet). Built once; read-only after."""
    table: dict[str, tuple[Price, ...]] = {}
    for model in _source_models():
        periods = _periods(model)
        if periods:
            table[model.id] = periods
    for family, model_id in newest_known_models(table).items():
        table[family] = table[model_id]
    return PriceBook(table, _source_match)


def priced_model_ids() -> frozenset[str]:
    """The model IDs the price source lists (families excluded)."""
    return frozenset(name for name in list_prices() if name.startswith("claude-"))


def with_overrides(table: PriceBook, overrides: dict[str, tuple[Price, ...]]) -> PriceBook:
    """MODEL_PRICES on top: an undated override replaces the model's whole entry; a dated one (``from``) replaces
    what the source says from that day on and keeps the source's prices before it."""
    merged = dict(table)
    for name, periods in overrides.items():
        first = min((p.since for p in periods if p.since is not None), default=None)
        if first is None or any(p.since is None for p in periods):
            merged[name] = periods
            continue
        earlier = tuple(p for p in merged.get(name, ()) if p.since is None or p.since < first)
        merged[name] = earlier + tuple(sorted(periods, key=lambda p: p.since or date.min))
    return table.with_entries(merged)


def override_price(name: str, value: Any) -> tuple[Price, ...]:
    """One MODEL_PRICES value: ``[in, out]``, or ``{"input", "output", "cache_write_5m", "cache_write_1h",
    "cache_read", "web_search" (USD per 1,000), "tier_above" (tokens), "tier": {same rates}, "from": "YYYY-MM-DD"}``,
    or a list of such objects; dollars per million tokens. ValueError naming what is wrong."""
    items = value if isinstance(value, list) and value and isinstance(value[0], dict) else [value]
    return tuple(sorted((_one_override(name, item) for item in items), key=lambda p: p.since or date.min))


RATE_KEYS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
OVERRIDE_KEYS = frozenset({*RATE_KEYS, "web_search", "tier_above", "tier", "from"})


def _amount(name: str, key: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"the {key} price of {name!r} must be an amount in dollars per million tokens")
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        raise ValueError(f"the {key} price of {name!r} must be an amount in dollars per million tokens") from None
    if not amount.is_finite() or not 0 <= amount <= 10_000:
        raise ValueError(f"the {key} price of {name!r} must be from 0 to 10000 dollars per million tokens")
    return amount


def _rates(name: str, given: dict[str, Any]) -> Rates:
    if "input" not in given or "output" not in given:
        raise ValueError(f"the price of {name!r} needs an input and an output price")
    amounts = {key: _amount(name, key, given[key]) for key in RATE_KEYS if key in given}
    return Rates.usd(amounts["input"], amounts["output"], cache_write_5m=amounts.get("cache_write_5m"),
                     cache_write_1h=amounts.get("cache_write_1h"), cache_read=amounts.get("cache_read"))


def _one_override(name: str, value: Any) -> Price:
    if isinstance(value, list | tuple):
        if len(value) != 2:
            raise ValueError(f"the price of {name!r} must be [input, output] or an object")
        return Price(_rates(name, {"input": value[0], "output": value[1]}))
    if not isinstance(value, dict):
        raise ValueError(f"the price of {name!r} must be [input, output] or an object")
    unknown = set(value) - OVERRIDE_KEYS
    if unknown:
        raise ValueError(f"the price of {name!r} has unknown fields {sorted(unknown)}; it takes "
                         f"{sorted(OVERRIDE_KEYS)}")
    tier = tier_above = None
    if "tier_above" in value or "tier" in value:
        if not isinstance(value.get("tier_above"), int) or value["tier_above"] <= 0 or not isinstance(
                value.get("tier"), dict):
            raise ValueError(f"a tiered price of {name!r} needs tier_above (prompt tokens) and tier (its rates)")
        tier_above, tier = value["tier_above"], _rates(name, value["tier"])
    since = None
    if "from" in value:
        try:
            since = date.fromisoformat(str(value["from"]))
        except ValueError:
            raise ValueError(f"the from date of {name!r}'s price must be YYYY-MM-DD") from None
    search = _amount(name, "web_search", value["web_search"]) if "web_search" in value else Decimal(0)
    return Price(_rates(name, value), tier_above, tier, -(-rate_micros(search) // 1000), since)


__all__ = ["list_prices", "override_price", "priced_model_ids", "with_overrides"]
