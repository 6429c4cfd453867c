"""Pure tests: no database, no fakes, no app; seconds in all."""
