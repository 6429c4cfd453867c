"""What the tiers share: the fake servers (fakes/), the harness and its fixtures (harness.py), processes,
the database proxy, the access-request flow and Slack markup helpers."""
