"""The command line as a package (issue 17): commands run in the test's process through an
injected console, each command's module is imported only when it runs, and what argparse prints
itself goes to the console too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.clirun import run_cli
from uvsweep.cli import STATES_TEXT, ExitStatus


def test_help_version_and_usage_errors_go_to_the_console() -> None:
    done = run_cli("--version")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("uvsweep ")
    helped = run_cli("scan", "--help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage: uvsweep scan")
    wrong = run_cli("sacn")
    assert wrong.returncode == ExitStatus.USAGE and wrong.stdout == ""
    assert "did you mean 'scan'?" in wrong.stderr
    bad_option = run_cli("clean", "--min-age", "soon")
    assert bad_option.returncode == ExitStatus.USAGE
    assert "usage: uvsweep clean" in bad_option.stderr


def test_help_states_and_help_command_print_on_the_console() -> None:
    assert run_cli("help", "states").stdout == STATES_TEXT
    assert run_cli("help", "clean").stdout == run_cli("clean", "--help").stdout
    assert run_cli("help").stdout == run_cli("--help").stdout


def test_a_command_parsed_alone_behaves_as_in_the_whole_parser() -> None:
    """`uvsweep scan ...` builds the scan parser alone (a faster start); its help and its usage
    errors must be what the parser of every command gives (reached here through `help`, and
    through a leading option, which takes the whole parser)."""
    from uvsweep.cli.parser import ALONE, build_parser, commands

    assert set(commands(build_parser())) - {"help", "completion"} == ALONE
    for name in sorted(ALONE):
        assert commands(build_parser(name)).keys() == {name}
        alone = run_cli(name, "--help")
        assert alone.returncode == 0 and alone.stdout == run_cli("help", name).stdout, name
        wrong, whole = run_cli(name, "--no-such-option"), run_cli("-q", name, "--no-such-option")
        assert wrong.returncode == whole.returncode == ExitStatus.USAGE, name
        assert wrong.stderr == whole.stderr, name


def test_scan_in_process_reports_an_orphan_and_quiet_prints_nothing(tmp_path: Path) -> None:
    (tmp_path / "uv-00000000000000aa.lock").touch()
    done = run_cli("scan", "--json", "--no-labels", "--dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    states = {f["name"]: f["state"] for f in json.loads(done.stdout)["files"]}
    assert states == {"uv-00000000000000aa.lock": "orphaned"}
    quiet = run_cli("scan", "-q", "--fail-on", "orphaned", "--dir", str(tmp_path))
    assert (quiet.returncode, quiet.stdout) == (ExitStatus.FOUND, "")


def test_each_run_starts_from_its_own_console(tmp_path: Path) -> None:
    # --quiet lives on the console of one run, not in the module: the next run prints again
    (tmp_path / "uv-00000000000000aa.lock").touch()
    assert run_cli("-q", "scan", "--dir", str(tmp_path)).stdout == ""
    assert "uv-00000000000000aa.lock" in run_cli("scan", "--dir", str(tmp_path)).stdout


def test_config_and_the_environment_are_restored_after_a_run(tmp_path: Path) -> None:
    env = {"UVSWEEP_CONFIG": str(tmp_path / "settings.toml")}
    assert run_cli("config", "set", "notifications", "off", env=env).returncode == 0
    shown = run_cli("config", "show", "notifications", env=env)
    assert shown.stdout == "notifications = false\n"
    import os

    assert os.environ.get("UVSWEEP_CONFIG") != env["UVSWEEP_CONFIG"]


def test_help_imports_no_command_module() -> None:
    code = (
        "import sys; from uvsweep.cli import main; main(['--help']);"
        "print(sorted(m for m in sys.modules if m.startswith('uvsweep.cli.')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)  # fmt: skip
    loaded = done.stdout.strip().splitlines()[-1]
    assert loaded == "['uvsweep.cli.main', 'uvsweep.cli.parser']"
