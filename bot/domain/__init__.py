"""Pure rules of Claude Gate: no I/O, no imports from the rest of the project."""
