#!/bin/sh
# Go on with a session `run.sh` started and that was stopped (Ctrl-C restores the source):
#   SCRATCH=/tmp/uvsweep-mutation-GROUP [GROUP=GROUP] tests/mutation/resume.sh [MODULE:LINE...]
# With GROUP, the tests are first brought up to date and the survivors so far tested again
# (`retest.py`).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ -z "${UVSWEEP_MUTATION_ENV:-}" ]; then
    # cosmic-ray is in a dependency group of its own (`mutation`): only this asks for it
    UVSWEEP_MUTATION_ENV=1 UV_PYTHON_DOWNLOADS=never exec uv run --project "$root" --locked \
        --group mutation "$0" "$@"
fi
cd "$SCRATCH"
export PYTHONPATH="$SCRATCH/app" PYTHONDONTWRITEBYTECODE=1
export UVSWEEP_REQUIRE_SYSTEM=1 UVSWEEP_ACCEPT_HIDDEN_PROCESSES=1
if [ -n "${GROUP:-}" ]; then
    nice -n 19 python "$root/tests/mutation/retest.py" "$GROUP" "$SCRATCH" "$@"
fi
nice -n 19 cosmic-ray exec session.toml session.sqlite
python tests/mutation/survivors.py session.sqlite
