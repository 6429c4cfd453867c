"""What a request costs, as Anthropic bills it, in integer micro-dollars (docs/spend.md).

A price of *x* US dollars per million tokens is *x* micro-dollars per token, so a request's cost in micro-dollars
is a sum of tokens × rate; rates are integer micro-dollars per million tokens and the sum is rounded up once, so
money is never a float and a budget is never passed by rounding.

A model's price has a rate for each kind of token the bill names (input, output, 5-minute and 1-hour cache
writes, cache reads), may have a long-prompt tier (every token of a request whose prompt, cached tokens
included, passes ``tier_above`` is billed at the tier's rates), a fee per server-side web search, and the date it
applies from. A price table maps a model ID (or a family name, for IDs nobody listed) to its prices, oldest
first; the table itself is built outside the domain (bot/price_source.py) from a maintained source.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_CEILING, Decimal, InvalidOperation

from bot.domain.models import family_of

MICROS_PER_USD = 1_000_000
# Anthropic's prompt-caching multipliers of the input rate, for a price that names no cache rate of its own
CACHE_WRITE_5M_FACTOR = Decimal("1.25")
CACHE_WRITE_1H_FACTOR = Decimal(2)
CACHE_READ_FACTOR = Decimal("0.1")
_DATED_SNAPSHOT = re.compile(r"-\d{8}$")


def rate_micros(value: float | str | Decimal) -> int:
    """Dollars per million tokens → integer micro-dollars per million, rounded up: a rate is never cheapened."""
    amount = Decimal(str(value))
    if not amount.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    return int((amount * MICROS_PER_USD).to_integral_value(rounding=ROUND_CEILING))


def usd_to_micros(value: float | str | Decimal) -> int:
    """Dollars → integer micro-dollars (exact for decimal text; ValueError for anything not a finite amount)."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    return int((amount * MICROS_PER_USD).to_integral_value())


@dataclass(frozen=True)
class Rates:
    """Micro-dollars per million tokens of each kind the bill names."""

    input: int
    output: int
    cache_write_5m: int
    cache_write_1h: int
    cache_read: int

    @classmethod
    def usd(cls, input_usd: float | str | Decimal, output_usd: float | str | Decimal, *,
            cache_write_5m: float | str | Decimal | None = None, cache_write_1h: float | str | Decimal | None = None,
            cache_read: float | str | Decimal | None = None) -> Rates:
        """From dollars per million tokens; a cache rate not given is Anthropic's multiplier of the input rate."""
        base = Decimal(str(input_usd))

        def rate(given: float | str | Decimal | None, factor: Decimal) -> int:
            return rate_micros(base * factor if given is None else given)

        return cls(rate_micros(input_usd), rate_micros(output_usd), rate(cache_write_5m, CACHE_WRITE_5M_FACTOR),
                   rate(cache_write_1h, CACHE_WRITE_1H_FACTOR), rate(cache_read, CACHE_READ_FACTOR))

    def highest(self, other: Rates) -> Rates:
        """Each rate the higher of the two."""
        return Rates(max(self.input, other.input), max(self.output, other.output),
                     max(self.cache_write_5m, other.cache_write_5m), max(self.cache_write_1h, other.cache_write_1h),
                     max(self.cache_read, other.cache_read))

    @property
    def dearest_input(self) -> int:
        """The highest rate a prompt token of ours can be billed at: the prompt may all be written to the cache
        (the gate marks its prefixes with 5-minute cache_control; it never asks for the 1-hour cache)."""
        return max(self.input, self.cache_write_5m)


@dataclass(frozen=True)
class Price:
    """One model's prices from ``since`` (None: from the start) until the next dated price of the same model."""

    base: Rates
    tier_above: int | None = None  # prompt tokens; a longer prompt bills every token at ``tier``
    tier: Rates | None = None
    web_search_micros: int = 0  # per server-side web search
    since: date | None = None
    context_window: int | None = None

    @classmethod
    def usd(cls, input_usd: float | str | Decimal, output_usd: float | str | Decimal) -> Price:
        return cls(Rates.usd(input_usd, output_usd))

    def rates(self, prompt_tokens: int) -> Rates:
        """The rates of a request whose prompt (input, cache writes and reads together) has ``prompt_tokens``."""
        if self.tier is not None and self.tier_above is not None and prompt_tokens > self.tier_above:
            return self.tier
        return self.base

    def bound(self, prompt_bound: int) -> Rates:
        """The highest rates a request whose prompt has at most ``prompt_bound`` tokens can be billed at: past the
        tier's threshold, each rate the higher of the base's and the tier's (the prompt may stay below it)."""
        if self.tier is not None and self.tier_above is not None and prompt_bound > self.tier_above:
            return self.base.highest(self.tier)
        return self.base


# model ID or family → its prices, oldest first (each a Price with its ``since``)
PriceTable = Mapping[str, tuple[Price, ...]]


def format_usd(micros: int) -> str:
    """``$1.23`` for a dollar or more; below it up to six decimals (``$0.0042``), so small requests stay visible."""
    dollars = Decimal(micros) / MICROS_PER_USD
    if abs(micros) >= MICROS_PER_USD or micros % 10_000 == 0:
        return f"${dollars:,.2f}"
    return "$" + f"{dollars:.6f}".rstrip("0")


def dated(prices: tuple[Price, ...], on: date | None) -> Price | None:
    """The price that applies ``on`` a day (None: today, in UTC); None before the first dated one."""
    day = on or datetime.now(UTC).date()
    chosen = None
    for price in prices:
        if price.since is None or price.since <= day:
            chosen = price
    return chosen


def undated(model_id: str) -> str:
    """A model ID without its snapshot date: ``claude-haiku-4-5-20251001`` → ``claude-haiku-4-5``."""
    return _DATED_SNAPSHOT.sub("", model_id)


def price_of(model_id: str, prices: PriceTable, on: date | None = None) -> Price | None:
    """The model ID's own price on a day, else its undated ID's (a dated snapshot), else its family's newest;
    None for a model nobody priced (or priced only from a later day)."""
    for key in (model_id, undated(model_id), family_of(model_id)):
        if key and key in prices and (price := dated(prices[key], on)) is not None:
            return price
    return None


def most_expensive(prices: PriceTable) -> Price:
    """The dearest price of the table (a model without a price is charged as this, never as free)."""
    current = [price for periods in prices.values() if (price := dated(periods, None)) is not None]
    return max(current, key=lambda p: (p.bound(2**62).output, p.bound(2**62).dearest_input))


def cost_micros(price: Price, *, input_tokens: int, output_tokens: int, cache_write_tokens: int = 0,
                cache_read_tokens: int = 0, cache_write_1h_tokens: int = 0, web_searches: int = 0) -> int:
    """Micro-dollars, rounded up. ``input_tokens`` excludes the cached ones and ``cache_write_tokens`` the 1-hour
    writes (as Anthropic's usage reports them); the prompt is all of them together, for the long-prompt tier."""
    rates = price.rates(input_tokens + cache_write_tokens + cache_write_1h_tokens + cache_read_tokens)
    per_million = (input_tokens * rates.input + output_tokens * rates.output + cache_write_tokens
                   * rates.cache_write_5m + cache_write_1h_tokens * rates.cache_write_1h
                   + cache_read_tokens * rates.cache_read)
    return -(-per_million // MICROS_PER_USD) + web_searches * price.web_search_micros


def estimated_cost_micros(model_id: str, input_tokens: int, output_tokens: int, prices: PriceTable, *,
                          cache_write_tokens: int = 0, cache_read_tokens: int = 0, on: date | None = None) -> int:
    """The cost of a finished request on the day it ran; a model without a price is priced as the dearest model
    (never as free)."""
    price = price_of(model_id, prices, on) or most_expensive(prices)
    return cost_micros(price, input_tokens=input_tokens, output_tokens=output_tokens,
                       cache_write_tokens=cache_write_tokens, cache_read_tokens=cache_read_tokens)


def estimated_cost(model_id: str, input_tokens: int, output_tokens: int, prices: PriceTable) -> float:
    """Dollars, for display: :func:`estimated_cost_micros` / 10⁶."""
    return estimated_cost_micros(model_id, input_tokens, output_tokens, prices) / MICROS_PER_USD


def cache_saving_micros(model_id: str, cache_write_tokens: int, cache_read_tokens: int, prices: PriceTable) -> int:
    """What prompt caching saved against sending the same tokens uncached, at the model's own cache rates
    (negative when a written prefix was never read again)."""
    price = price_of(model_id, prices) or most_expensive(prices)
    rates = price.rates(cache_write_tokens + cache_read_tokens)
    per_million = (cache_read_tokens * (rates.input - rates.cache_read)
                   - cache_write_tokens * (rates.cache_write_5m - rates.input))
    return round(per_million / MICROS_PER_USD)
