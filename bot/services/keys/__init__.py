"""Anthropic API keys: the registry, which key serves a request, sync, alerts, rotation reminders, the Admin
API, offboarding."""
