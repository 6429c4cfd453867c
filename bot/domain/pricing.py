"""What a request costs: prices per model ID with family defaults, kept in integer micro-dollars (PRODUCT §6).

A price of *x* US dollars per million tokens is *x* micro-dollars per token, so a request's cost in micro-dollars
is a sum of tokens × price; prices are stored as integer micro-dollars per million tokens and the sum is rounded
up once, so money is never a float and a budget is never passed by rounding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from bot.domain.models import family_of

MICROS_PER_USD = 1_000_000
CACHE_WRITE_PERCENT = 125  # a 5-minute cache write costs 1.25 × the input price
CACHE_READ_PERCENT = 10  # a cache read costs 0.1 × the input price


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
class Price:
    """US dollars per million tokens, kept as integer micro-dollars per million tokens."""

    input_micros: int
    output_micros: int

    @classmethod
    def usd(cls, input_usd: float | str | Decimal, output_usd: float | str | Decimal) -> Price:
        return cls(usd_to_micros(input_usd), usd_to_micros(output_usd))

    @property
    def input(self) -> float:
        return self.input_micros / MICROS_PER_USD

    @property
    def output(self) -> float:
        return self.output_micros / MICROS_PER_USD


# Anthropic's list prices (USD per million tokens). An older model ID can cost three times its family's newest
# (Opus 4.1 and 4: $15/$75; Opus 4.5 and later: $5/$25), so the table is by model ID; FAMILY_PRICES price an ID
# that is not listed (a newer one) at its family's newest price.
MODEL_ID_PRICES: dict[str, Price] = {
    **dict.fromkeys(("claude-opus-4-8", "claude-opus-4-7", "claude-opus-4-6", "claude-opus-4-5",
                     "claude-opus-4-5-20251101"), Price.usd(5, 25)),
    **dict.fromkeys(("claude-opus-4-1", "claude-opus-4-1-20250805", "claude-opus-4-0", "claude-opus-4-20250514",
                     "claude-3-opus-20240229", "claude-3-opus-latest"), Price.usd(15, 75)),
    **dict.fromkeys(("claude-sonnet-4-6", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "claude-sonnet-4-0",
                     "claude-sonnet-4-20250514", "claude-3-7-sonnet-20250219", "claude-3-7-sonnet-latest"),
                    Price.usd(3, 15)),
    **dict.fromkeys(("claude-haiku-4-5", "claude-haiku-4-5-20251001"), Price.usd(1, 5)),
    **dict.fromkeys(("claude-3-5-haiku-20241022", "claude-3-5-haiku-latest"), Price.usd("0.8", 4)),
    "claude-3-haiku-20240307": Price.usd("0.25", "1.25"),
}
FAMILY_PRICES: dict[str, Price] = {
    "haiku": Price.usd(1, 5),
    "sonnet": Price.usd(3, 15),
    "opus": Price.usd(5, 25),
}
DEFAULT_PRICES: dict[str, Price] = MODEL_ID_PRICES | FAMILY_PRICES  # keys: model IDs and family names


def format_usd(micros: int) -> str:
    """``$1.23`` for a dollar or more; below it up to six decimals (``$0.0042``), so small requests stay visible."""
    dollars = Decimal(micros) / MICROS_PER_USD
    if abs(micros) >= MICROS_PER_USD or micros % 10_000 == 0:
        return f"${dollars:,.2f}"
    return "$" + f"{dollars:.6f}".rstrip("0")


def price_of(model_id: str, prices: Mapping[str, Price] | None = None) -> Price | None:
    """The model ID's own price, else its family's, else None (a model nobody priced)."""
    table = DEFAULT_PRICES if prices is None else prices
    if model_id in table:
        return table[model_id]
    family = family_of(model_id)
    return table.get(family) if family else None


def most_expensive(prices: Mapping[str, Price] | None = None) -> Price:
    table = DEFAULT_PRICES if prices is None else prices
    return max(table.values(), key=lambda p: (p.output_micros, p.input_micros))


def cost_micros(price: Price, *, input_tokens: int, output_tokens: int, cache_write_tokens: int = 0,
                cache_read_tokens: int = 0) -> int:
    """Micro-dollars, rounded up. ``input_tokens`` excludes the cached ones (as Anthropic's usage reports them)."""
    hundredths = (100 * (input_tokens * price.input_micros + output_tokens * price.output_micros)
                  + CACHE_WRITE_PERCENT * cache_write_tokens * price.input_micros
                  + CACHE_READ_PERCENT * cache_read_tokens * price.input_micros)
    return -(-hundredths // (100 * 1_000_000))


def estimated_cost_micros(model_id: str, input_tokens: int, output_tokens: int,
                          prices: Mapping[str, Price] | None = None, *, cache_write_tokens: int = 0,
                          cache_read_tokens: int = 0) -> int:
    """The cost of a finished request; a model without a price is priced as the dearest model (never as free)."""
    price = price_of(model_id, prices) or most_expensive(prices)
    return cost_micros(price, input_tokens=input_tokens, output_tokens=output_tokens,
                       cache_write_tokens=cache_write_tokens, cache_read_tokens=cache_read_tokens)


def estimated_cost(model_id: str, input_tokens: int, output_tokens: int,
                   prices: Mapping[str, Price] | None = None) -> float:
    """Dollars, for display: :func:`estimated_cost_micros` / 10⁶."""
    return estimated_cost_micros(model_id, input_tokens, output_tokens, prices) / MICROS_PER_USD


def cache_saving_micros(model_id: str, cache_write_tokens: int, cache_read_tokens: int,
                        prices: Mapping[str, Price] | None = None) -> int:
    """What prompt caching saved against sending the same tokens uncached: reads cost 0.9 × input less, writes
    0.25 × input more (negative when a written prefix was never read again)."""
    price = price_of(model_id, prices) or most_expensive(prices)
    hundredths = ((100 - CACHE_READ_PERCENT) * cache_read_tokens
                  - (CACHE_WRITE_PERCENT - 100) * cache_write_tokens) * price.input_micros
    return round(hundredths / (100 * 1_000_000))
