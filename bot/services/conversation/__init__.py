"""A conversation: the gate's two phases, the call to Claude, the records it leaves, replays and places."""
