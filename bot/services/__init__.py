"""Use cases. They take sessions and clients and return plain results; they never see Bolt."""
