#!/bin/sh
# Mutation run over the safety code with cosmic-ray (see tests/MUTATION.md).
#
#   [SINCE=COMMIT] tests/mutation/run.sh GROUP MODULE...
#       GROUP: a tests/mutation/GROUP.toml (its test command); SINCE: run only the mutants on
#       lines changed since COMMIT (since.py; OLD..UNTIL: changed between the two and not
#       since), the rest are recorded as filtered; with
#       SINCE_PENDING=OLD_SESSION.sqlite also those an older session on COMMIT left pending;
#       with ONLY="MODULE FUNCTION...", only the mutants of those functions (defer.py --only);
#       with DEFER="MODULE FUNCTION...", none of those functions' mutants (defer.py); in both,
#       MODULE FUNCTION... may repeat for more modules
#
# cosmic-ray mutates the source files in place, so the run works on a copy of the tree
# ($SCRATCH, default /tmp/uvsweep-mutation-GROUP), never on the work tree. The tests import that
# copy (PYTHONPATH, which tests/conftest.py's APP_DIR also hands to every subprocess they start:
# the CLI, the keeper, a cleaner run as `nobody`), and run in a private PID namespace so that uv
# processes elsewhere on the machine cannot trip the `clean` gate. Needs root (namespaces, the
# user `nobody`), like the tests it runs. Prints the counts and every survivor at the end.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ -z "${UVSWEEP_MUTATION_ENV:-}" ]; then
    # cosmic-ray is in a dependency group of its own (`mutation`): only this asks for it
    UVSWEEP_MUTATION_ENV=1 UV_PYTHON_DOWNLOADS=never exec uv run --project "$root" --locked \
        --group mutation "$0" "$@"
fi
group=$1
shift
scratch=${SCRATCH:-/tmp/uvsweep-mutation-$group}
rm -rf "$scratch"
mkdir -p "$scratch"
(cd "$root" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$scratch")
chmod 755 "$scratch"
cd "$scratch"
export PYTHONPATH="$scratch/app" PYTHONDONTWRITEBYTECODE=1
export UVSWEEP_REQUIRE_SYSTEM=1 UVSWEEP_ACCEPT_HIDDEN_PROCESSES=1
config=session.toml
modules=$(printf '"%s", ' "$@")
sed "s#^module-path = .*#module-path = [$modules]#" "tests/mutation/$group.toml" >"$config"
cosmic-ray init "$config" session.sqlite
cr-filter-operators session.sqlite "$config"
python tests/mutation/skip_equivalent.py session.sqlite
if [ -n "${SINCE:-}" ]; then
    # only the mutants on lines changed since a commit a full run was made on
    python tests/mutation/since.py session.sqlite "$root" "$SINCE" ${SINCE_PENDING:-}
fi
if [ -n "${ONLY:-}" ]; then
    # shellcheck disable=SC2086  # MODULE FUNCTION... as words
    python tests/mutation/defer.py session.sqlite --only $ONLY
fi
if [ -n "${DEFER:-}" ]; then
    # shellcheck disable=SC2086  # MODULE FUNCTION... as words
    python tests/mutation/defer.py session.sqlite $DEFER
fi
# the unmutated tree must pass, or every mutant would look killed
nice -n 19 cosmic-ray baseline "$config"
nice -n 19 cosmic-ray exec "$config" session.sqlite
python tests/mutation/survivors.py session.sqlite
