"""`claude-gate models [--json]`: what ANTHROPIC_API_KEY can use (Anthropic's Models API), each model with its
lifecycle, its price from the price table (bot/price_source.py, MODEL_PRICES on top) and its context window, and
the alias that points at it."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from bot.config import Settings
from bot.domain.errors import CliError
from bot.domain.pricing import Price, format_usd, price_of


def add_models_command(sub: Any) -> None:
    models = sub.add_parser("models", help="the models the API key can use, with price and context window")
    models.add_argument("--json", action="store_true", help="print the list as JSON")
    models.set_defaults(handler=cmd_models)


def price_text(price: Price | None) -> str:
    if price is None:
        return "no price (refused under a USD budget; MODEL_PRICES can add one)"
    rates = price.base
    text = (f"{format_usd(rates.input)} in / {format_usd(rates.output)} out per million tokens, cache read "
            f"{format_usd(rates.cache_read)}")
    if price.tier is not None and price.tier_above is not None:
        text += (f"; past {price.tier_above:,} prompt tokens {format_usd(price.tier.input)} / "
                 f"{format_usd(price.tier.output)}")
    return text


def cmd_models(settings: Settings, args: argparse.Namespace) -> int:
    from bot.services.conversation.listed_models import ListedModels

    if settings.anthropic_api_key is None:
        raise CliError("models reads Anthropic's model list: set ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL for a "
                       "proxy) in the environment or .env")
    try:
        listed = asyncio.run(ListedModels(settings).read())
    except Exception as exc:  # the SDK's errors: one line, no traceback
        raise CliError(f"could not read Anthropic's model list ({type(exc).__name__}): check ANTHROPIC_API_KEY "
                       "and the network") from None
    aliases = {target: alias for alias, target in settings.models.aliases.items()}
    prices = settings.prices
    rows: list[dict[str, Any]] = []
    for model in sorted(listed.values(), key=lambda m: m.id):
        price = price_of(model.id, prices)
        rows.append({"id": model.id, "name": model.name, "lifecycle": model.lifecycle,
                     "retires_at": model.retires_at.date().isoformat() if model.retires_at else None,
                     "context_window": model.context_window or (price.context_window if price else None),
                     "alias": aliases.get(model.id), "price": price_text(price)})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        life = str(row["lifecycle"]) + (f", retires {row['retires_at']}" if row["retires_at"] else "")
        window = f"{row['context_window']:,} tokens" if row["context_window"] else "context window not stated"
        alias = f" (alias {row['alias']})" if row["alias"] else ""
        print(f"{row['id']}{alias}: {row['name']} · {life} · {window} · {row['price']}")
    missing = [f"{alias} → {target}" for target, alias in aliases.items() if target not in listed]
    if missing:
        print("Not listed by Anthropic (requests for them are refused): " + ", ".join(missing))
    return 0
