"""`/claude` for everyone: status, model, usage, and a person's own preferences."""
