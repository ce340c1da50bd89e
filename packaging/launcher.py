"""The frozen app's entry point: the same `uvsweep` command line."""

import sys

from uvsweep.cli import main

if __name__ == "__main__":
    sys.exit(main())  # helpers too: `_keeper`, `_winkeeper`, `_notifyd` (uvsweep.cli.main)
