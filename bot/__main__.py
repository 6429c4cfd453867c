import gc

# Start-up imports allocate hundreds of thousands of objects that live as long as the process: a collection pass
# every 700 of them was a sixth of the import time. bot.cli.main enables the collector again once it knows the
# command; `serve` does once it listens (after freezing what start-up built).
gc.disable()

from bot.cli import main  # noqa: E402

raise SystemExit(main())
