"""Slack-facing pieces that are not listeners: directory, threads, streaming relay, rendering, manifest."""
