"""Scheduled prompts: `/claude schedule`, `schedules`, `unschedule`, and their runs by the scheduler leader."""
