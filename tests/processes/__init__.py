"""`claude-gate serve` processes: several on one database, PostgreSQL, outages, kills, start-up and shutdown;
the slowest tier."""
