"""The real app in-process (and the shell as a process) against the fake Slack and Anthropic servers on
127.0.0.1 and a migrated database: most of the suite."""
