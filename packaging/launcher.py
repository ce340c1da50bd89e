"""The frozen app's entry point: the same `uvsweep` command line."""

import sys

from uvsweep.cli import main

if __name__ == "__main__":
    if sys.argv[1:2] == ["_winkeeper"]:  # a Windows keeper (`uvsweep.remove.winkeeper`)
        from uvsweep.remove.winkeeper import keeper_main

        sys.exit(keeper_main(sys.argv[2:]))
    sys.exit(main())
