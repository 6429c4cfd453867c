"""The `claude-gate` command line: `main` (bot/cli/program.py) parses the words and runs one verb of this package.

Every `/claude-admin` subcommand is a verb generated from the grammar and run through the one dispatcher as the
shell (bot/cli/admin.py, bot/cli/context.py); serve, chat, db, manifest, the exports and purge are small modules
here. No module of the package imports bot/cli/program.py back: what they share is in bot/cli/base.py.
"""

from bot.cli.program import main as main
