"""Claude Gate: Claude in Slack, gated by roles that admins control from Slack."""
