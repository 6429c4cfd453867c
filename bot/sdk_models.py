"""The model IDs the installed anthropic SDK knows, for the defaults of MODEL_HAIKU / MODEL_SONNET / MODEL_OPUS.

Read from the SDK's files, outside the domain (bot/domain/models.py picks the newest of them, purely).
"""

from __future__ import annotations

import importlib.util
import typing
from pathlib import Path

from bot.domain.models import newest_known_models


def _sdk_model_param() -> object:
    """The SDK's ``ModelParam`` type alias, read from its module file alone.

    ``import anthropic.types`` runs the whole SDK's ``__init__`` (2-3 s here): every command line call paid that
    for three defaults. ``anthropic/types/model_param.py`` is pure data (typing only), so it is loaded by itself;
    if a future SDK moves it, the full import still works.
    """
    spec = importlib.util.find_spec("anthropic")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / "types" / "model_param.py"
        module_spec = importlib.util.spec_from_file_location("_claude_gate_sdk_model_param", path)
        if not path.is_file() or module_spec is None or module_spec.loader is None:
            continue
        module = importlib.util.module_from_spec(module_spec)
        try:
            module_spec.loader.exec_module(module)
            return module.ModelParam
        except Exception:  # not pure data any more: fall back to the package
            break
    from anthropic.types import ModelParam

    return ModelParam


def sdk_model_ids() -> list[str]:
    """Model IDs the installed anthropic SDK knows (its ``ModelParam`` literal)."""
    ids: list[str] = []
    for arg in typing.get_args(_sdk_model_param()):
        ids.extend(a for a in typing.get_args(arg) if isinstance(a, str))
    return ids


def default_model_ids() -> dict[str, str]:
    """Each alias's default: the newest model that both the SDK and the price source know (an unpriced model
    would be refused under every USD budget)."""
    from bot.price_source import priced_model_ids

    fallback = {"haiku": "claude-haiku-4-5", "sonnet": "claude-sonnet-4-5", "opus": "claude-opus-4-5"}
    return fallback | newest_known_models(set(sdk_model_ids()) & priced_model_ids())
