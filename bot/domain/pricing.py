"""Estimated cost of a request: one price table per model family, in one place."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.models import family_of


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    input: float
    output: float


DEFAULT_PRICES: dict[str, Price] = {
    "haiku": Price(1.0, 5.0),
    "sonnet": Price(3.0, 15.0),
    "opus": Price(5.0, 25.0),
}


def estimated_cost(model_id: str, input_tokens: int, output_tokens: int,
                   prices: dict[str, Price] | None = None) -> float:
    """Dollars; models outside the known families are priced as the most expensive family."""
    table = prices or DEFAULT_PRICES
    family = family_of(model_id)
    price = table.get(family or "") or max(table.values(), key=lambda p: p.output)
    return round((input_tokens * price.input + output_tokens * price.output) / 1_000_000, 6)
