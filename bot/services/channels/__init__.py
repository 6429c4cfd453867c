"""Per-channel settings: on/off, model, prompt, roles."""
