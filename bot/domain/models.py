"""Model aliases (haiku, sonnet, opus) and their resolution to model IDs."""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass

FAMILIES = ("haiku", "sonnet", "opus")

_MODEL_ID = re.compile(r"^claude-(?:(?P<family_first>[a-z]+)-(?P<v1>[\d-]+)|(?P<v2>[\d-]+)-(?P<family_last>[a-z]+))")
_VALID_MODEL_ID = re.compile(r"^claude-[a-z0-9][a-z0-9.-]{2,80}$")


def family_of(model_id: str) -> str | None:
    """The family (haiku/sonnet/opus) of a model ID, or None for other or unknown models."""
    match = _MODEL_ID.match(model_id)
    if not match:
        return None
    family = match.group("family_first") or match.group("family_last")
    return family if family in FAMILIES else None


def _version_key(model_id: str) -> tuple[int, ...]:
    match = _MODEL_ID.match(model_id)
    if not match:
        return ()
    digits = (match.group("v1") or match.group("v2") or "").strip("-").split("-")
    # Dated snapshots (YYYYMMDD) sort below their undated alias of the same version.
    parts = [int(d) for d in digits if d.isdigit() and len(d) < 8]
    return tuple(parts)


def newest_known_models(known_ids: typing.Iterable[str]) -> dict[str, str]:
    """For each family, the newest model ID among ``known_ids`` (undated aliases preferred)."""
    newest: dict[str, str] = {}
    for model_id in known_ids:
        family = family_of(model_id)
        if family is None or re.search(r"\d{8}$", model_id):
            continue
        current = newest.get(family)
        if current is None or _version_key(model_id) > _version_key(current):
            newest[family] = model_id
    return newest


@dataclass(frozen=True)
class ModelCatalog:
    """Alias targets, from the MODEL_HAIKU / MODEL_SONNET / MODEL_OPUS settings."""

    haiku: str
    sonnet: str
    opus: str

    @property
    def aliases(self) -> dict[str, str]:
        return {"haiku": self.haiku, "sonnet": self.sonnet, "opus": self.opus}

    def resolve(self, name: str) -> str | None:
        """An alias or a full model ID → the model ID; None if it is neither."""
        name = name.strip().lower()
        if name in self.aliases:
            return self.aliases[name]
        if _VALID_MODEL_ID.match(name):
            return name
        return None

    def alias_of(self, model_id: str) -> str:
        for alias, target in self.aliases.items():
            if target == model_id:
                return alias
        return model_id

    def allowed(self, policy_models: typing.Iterable[str]) -> list[str]:
        """The model IDs a policy's list (aliases or IDs) permits."""
        resolved = (self.resolve(name) for name in policy_models)
        return list(dict.fromkeys(m for m in resolved if m))
