"""`python -m uvsweep` runs the command line."""

from uvsweep.cli import main

raise SystemExit(main())
