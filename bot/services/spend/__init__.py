"""Money and tokens: the counters budgets reserve against, budgets, reports, alerts, the usage chart."""
