#!/bin/sh
# Go on with a session `run.sh` started and that was stopped (Ctrl-C restores the source):
#   SCRATCH=/tmp/uvsweep-mutation-GROUP tests/mutation/resume.sh
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${UV_PROJECT_ENVIRONMENT:-$root/.venv}
cd "$SCRATCH"
export PATH="$venv/bin:$PATH" PYTHONPATH="$SCRATCH/app" PYTHONDONTWRITEBYTECODE=1
export UVSWEEP_REQUIRE_SYSTEM=1 UVSWEEP_ACCEPT_HIDDEN_PROCESSES=1
nice -n 10 cosmic-ray exec session.toml session.sqlite
python tests/mutation/survivors.py session.sqlite
