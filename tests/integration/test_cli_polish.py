"""The command line's papercuts (issue 18): durations in `config set`, one-line usage errors,
honest summaries and plurals, typo suggestions, `-V`, `help states`, colour, `--quiet`, and the
completion scripts. What a command prints is checked in this process (`run_cli`); `doctor` (which
reads the temp dir from the environment at start-up) and the shells' completion run as processes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.clirun import run_cli
from tests.conftest import Holder, need
from tests.helpers import A, uvsweep

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
ESC = "\x1b["
# a pseudo-terminal is not needed to test colour on: FORCE_COLOR does what a terminal does, and
# the off switches are tested against it
PLAIN = {"NO_COLOR": "", "FORCE_COLOR": ""}


def config_env(tmp_path: Path) -> dict[str, str]:
    return {"UVSWEEP_CONFIG": str(tmp_path / "cfg" / "settings.toml")}


# ---- config ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("typed", "seconds"), [("2h", 7200.0), ("90", 90.0), ("10m", 600.0),
                                                ("1.5d", 129600.0), ("1w", 604800.0)])  # fmt: skip
def test_config_set_takes_the_duration_syntax_of_min_age(
    tmp_path: Path, typed: str, seconds: float
) -> None:
    env = config_env(tmp_path)
    done = run_cli("config", "set", "auto_clean_min_age", typed, env=env)
    assert done.returncode == 0, done.stderr
    shown = json.loads(run_cli("config", "show", "--json", env=env).stdout)
    assert shown["settings"]["auto_clean_min_age"] == seconds
    # and the same text is a valid --min-age
    assert run_cli("clean", "--dry-run", "--min-age", typed, "--dir", str(tmp_path)).returncode == 0


@pytest.mark.parametrize("typed", ["2x", "", "-5", "0", "inf", "200y"])
def test_config_set_rejects_bad_durations_in_one_line(tmp_path: Path, typed: str) -> None:
    env = config_env(tmp_path)
    done = run_cli("config", "set", "notify_interval", typed, env=env)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("uvsweep: notify_interval: ")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "cfg" / "settings.toml").exists()


def test_config_set_without_a_key_is_a_usage_error_that_says_what_to_type(tmp_path: Path) -> None:
    env = config_env(tmp_path)
    for action in ("set", "unset"):
        done = run_cli("config", action, env=env)
        assert done.returncode == 2
        assert "None" not in done.stderr
        assert f"`uvsweep config {action} KEY" in done.stderr
        assert "auto_clean_min_age" in done.stderr
    done = run_cli("config", "set", "notification", "off", env=env)
    assert done.returncode == 2 and "did you mean 'notifications'?" in done.stderr


def test_config_show_key_prints_only_that_key(tmp_path: Path) -> None:
    env = config_env(tmp_path)
    run_cli("config", "set", "notifications", "off", env=env)
    done = run_cli("config", "show", "notifications", env=env)
    assert done.returncode == 0 and done.stdout == "notifications = false\n"
    doc = json.loads(run_cli("config", "show", "notifications", "--json", env=env).stdout)
    assert doc["settings"] == {"notifications": False}
    everything = run_cli("config", "show", env=env).stdout
    assert "auto_clean_min_age" in everything and "notifications = false" in everything
    done = run_cli("config", "show", "nope", env=env)
    assert done.returncode == 2 and "unknown setting 'nope'" in done.stderr


# ---- what scan says ------------------------------------------------------------------------------


def test_a_missing_dir_gets_only_its_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "nonexistent")
    done = run_cli("scan", "--dir", missing)
    assert done.returncode == 4
    assert done.stdout == ""
    # (a note on what cannot be seen may follow, e.g. when the suite runs in a PID namespace)
    errors = [line for line in done.stderr.splitlines() if not line.startswith("uvsweep: note:")]
    assert errors == [f"uvsweep: {missing}: no such directory"], done.stderr


def test_the_summary_names_the_dirs_it_scanned(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    done = run_cli("scan", "--dir", str(one), "--dir", str(two))
    assert done.stdout == f"No uv lock files in {one} and {two}.\n"
    done = run_cli("scan", "--dir", str(one), "--dir", str(tmp_path / "gone"))
    assert done.returncode == 4 and done.stdout == f"No uv lock files in {one}.\n"
    (one / A).touch()
    done = run_cli("scan", "--dir", str(one), "--dir", str(two))
    assert done.stdout.splitlines()[-1] == f"1 uv lock file in {one} and {two}: 1 orphaned."


def test_doctor_counts_in_good_english(tmp_path: Path, lockdir: Path) -> None:
    (lockdir / A).touch()
    env = {"TMPDIR": str(lockdir)}
    done = uvsweep("doctor", env=env)
    assert f"{lockdir}: 1 uv lock file\n" in done.stdout
    assert not re.search(r"\b1 uv lock files\b", done.stdout)


# ---- typos, version, help ------------------------------------------------------------------------


@pytest.mark.parametrize(("typed", "meant"), [(["scna"], "scan"), (["claen"], "clean"),
                                              (["autostart", "enabel"], "enable"),
                                              (["help", "stats"], "states")])  # fmt: skip
def test_a_typo_suggests_the_closest_command(typed: list[str], meant: str) -> None:
    done = run_cli(*typed)
    assert done.returncode == 2
    assert f"did you mean {meant!r}?" in done.stderr


def test_dash_capital_v_prints_the_version() -> None:
    from uvsweep import __version__

    for flag in ("-V", "--version"):
        assert run_cli(flag).stdout == f"uvsweep {__version__}\n"


def test_states_and_exit_codes_live_in_one_place() -> None:
    states = run_cli("help", "states")
    assert states.returncode == 0
    from uvsweep.cli import ExitStatus

    for code in ExitStatus:
        assert re.search(rf"^  {int(code)} +\S", states.stdout, re.MULTILINE), code
    for state in ("orphaned", "foreign", "held", "waiting", "open", "suspicious"):
        assert re.search(rf"^  {state} +\S", states.stdout, re.MULTILINE), state
    # scan, clean and the main help point to it instead of repeating it
    for args in (["scan", "--help"], ["clean", "--help"], ["--help"]):
        text = run_cli(*args).stdout
        assert "`uvsweep help states`" in text, args
        assert "suspicious  a symlink" not in text and "130  interrupted" not in text, args
    # the README carries the same block, word for word
    readme = (ROOT / "README.md").read_text()
    assert states.stdout in readme
    assert run_cli("help", "clean").stdout == run_cli("clean", "--help").stdout


# ---- colour --------------------------------------------------------------------------------------


def test_colour_follows_force_color_and_no_color(lockdir: Path, hold: type[Holder]) -> None:
    (lockdir / A).touch()
    (lockdir / "uv-00000000000000bb.lock").touch()
    hours_ago = time.time() - 7200  # an age that reads the same in every run ("0s" vs "1s")
    for name in (A, "uv-00000000000000bb.lock"):
        os.utime(lockdir / name, (hours_ago, hours_ago))
    hold(lockdir / "uv-00000000000000bb.lock")
    args = ("scan", "--dir", str(lockdir))
    piped = run_cli(*args, env=PLAIN)
    assert ESC not in piped.stdout  # not a terminal: no colour
    forced = run_cli(*args, env={**PLAIN, "FORCE_COLOR": "1"})
    assert f"{ESC}33morphaned{ESC}0m" in forced.stdout and f"{ESC}32mheld{ESC}0m" in forced.stdout
    # colour costs no columns: without the escapes the table is the piped one
    assert re.sub(r"\x1b\[[0-9;]*m", "", forced.stdout) == piped.stdout
    both = run_cli(*args, env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert ESC not in both.stdout
    as_json = run_cli(*args, "--json", env={**PLAIN, "FORCE_COLOR": "1"})
    assert ESC not in as_json.stdout
    json.loads(as_json.stdout)


def test_colour_on_a_terminal_only(lockdir: Path) -> None:
    import pty

    (lockdir / A).touch()
    exe = shutil.which("uvsweep", path=os.path.dirname(sys.executable)) or "uvsweep"

    def through_pty(env: dict[str, str]) -> bytes:
        leader, follower = pty.openpty()
        try:
            proc = subprocess.Popen(
                [exe, "scan", "--dir", str(lockdir)],
                stdout=follower,
                stderr=subprocess.DEVNULL,
                env={**os.environ, **env},
            )
            os.close(follower)
            chunks = []
            while True:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # EIO: the other side closed
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            proc.wait(timeout=60)
        finally:
            os.close(leader)
        return b"".join(chunks)

    assert b"\x1b[33morphaned" in through_pty({**PLAIN, "TERM": "xterm"})
    assert b"\x1b[" not in through_pty({**PLAIN, "NO_COLOR": "1", "TERM": "xterm"})
    assert b"\x1b[" not in through_pty({**PLAIN, "TERM": "dumb"})


def test_errors_are_coloured_on_stderr_only_when_it_takes_colour(tmp_path: Path) -> None:
    missing = str(tmp_path / "gone")
    done = run_cli("scan", "--dir", missing, env={**PLAIN, "FORCE_COLOR": "1"})
    assert done.stderr.startswith(f"{ESC}1;31muvsweep:{ESC}0m ")
    assert run_cli("scan", "--dir", missing, env=PLAIN).stderr.startswith("uvsweep: ")


# ---- --quiet -------------------------------------------------------------------------------------


def test_quiet_prints_only_errors_and_the_exit_code_tells(lockdir: Path, tmp_path: Path) -> None:
    (lockdir / A).touch()
    for args in (["-q", "scan"], ["scan", "--quiet"]):
        done = run_cli(*args, "--dir", str(lockdir), "--fail-on", "orphaned")
        assert (done.returncode, done.stdout, done.stderr) == (3, "", "")
    # errors still show
    done = run_cli("scan", "-q", "--dir", str(tmp_path / "gone"))
    assert done.returncode == 4 and done.stdout == "" and "no such directory" in done.stderr
    # the JSON asked for is still printed
    assert json.loads(run_cli("-q", "scan", "--json", "--dir", str(lockdir)).stdout)["files"]
    # notes go too: a corrupt settings file is a warning, not an error
    bad = tmp_path / "bad.toml"
    bad.write_text("this is [not toml")
    loud = run_cli("scan", "--dir", str(lockdir), env={"UVSWEEP_CONFIG": str(bad)})
    assert "not valid TOML" in loud.stderr
    quiet = run_cli("scan", "-q", "--dir", str(lockdir), env={"UVSWEEP_CONFIG": str(bad)})
    assert quiet.stderr == ""
    done = run_cli("clean", "-q", "--ignore-running-uv", "--dir", str(lockdir))
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert not (lockdir / A).exists()
    done = run_cli("-q", "config", "set", "notifications", "off", env=config_env(tmp_path))
    assert (done.returncode, done.stdout) == (0, "")
    shown = run_cli("-q", "config", "show", "notifications", env=config_env(tmp_path))
    assert shown.stdout == "notifications = false\n"  # a query still answers


# ---- completion ----------------------------------------------------------------------------------


def completion(shell: str, tmp_path: Path) -> Path:
    done = run_cli("completion", shell)
    assert done.returncode == 0 and done.stdout, done.stderr
    script = tmp_path / f"uvsweep.{shell}"
    script.write_text(done.stdout)
    return script


def test_bash_completes_commands_and_options(tmp_path: Path) -> None:
    script = completion("bash", tmp_path)

    def complete(*words: str) -> set[str]:
        line = " ".join(["uvsweep", *words])
        probe = (f"source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words)};"
                 f" COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}};"
                 " _shtab_uvsweep; printf '%s\\n' \"${COMPREPLY[@]}\"")  # fmt: skip
        done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=30,
                              check=True)  # fmt: skip
        return set(done.stdout.split())

    assert {"scan"} <= complete("sc")
    assert "clean" in complete("cl")
    assert {"--min-age", "--all-users", "--dry-run"} <= complete("clean", "--")
    assert complete("autostart", "en") == {"enable"}


def test_zsh_loads_the_completion(tmp_path: Path) -> None:
    need(shutil.which("zsh") is not None, "zsh is not installed (Debian package zsh)")
    script = completion("zsh", tmp_path)
    (tmp_path / "_uvsweep").write_text(script.read_text())
    probe = (f"fpath=({tmp_path} $fpath); autoload -Uz compinit; compinit -u -d {tmp_path}/dump;"
             " autoload -Uz _uvsweep; whence -w _uvsweep; print ${_comps[uvsweep]}")  # fmt: skip
    done = subprocess.run(["zsh", "-f", "-c", probe], capture_output=True, text=True, timeout=30,
                          check=False, env={**os.environ, "HOME": str(tmp_path)})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "_uvsweep: function" in done.stdout and done.stdout.split()[-1] == "_uvsweep"
    assert "scan" in script.read_text() and "--min-age" in script.read_text()


def test_fish_completes_commands_and_options(tmp_path: Path) -> None:
    need(shutil.which("fish") is not None, "fish is not installed (Debian package fish)")
    script = completion("fish", tmp_path)

    def complete(line: str) -> set[str]:
        done = subprocess.run(
            ["fish", "--no-config", "-c", f"source {script}; complete -C '{line}'"],
            capture_output=True, text=True, timeout=30, check=True,
            env={**os.environ, "HOME": str(tmp_path)},
        )  # fmt: skip
        return {row.split("\t")[0] for row in done.stdout.splitlines()}

    assert "scan" in complete("uvsweep sc")
    assert "--min-age" in complete("uvsweep clean --mi")
    assert "desktop-entry" in complete("uvsweep desk")


def test_completion_for_an_unknown_shell_is_a_usage_error() -> None:
    done = run_cli("completion", "tcsh")
    assert done.returncode == 2 and "choose from bash, zsh, fish" in done.stderr


def test_completion_does_not_load_shtab_on_the_scan_path(lockdir: Path) -> None:
    code = ("import sys; from uvsweep.cli import main; main(['scan', '--dir', sys.argv[1]]);"
            "print('SHTAB', 'shtab' in sys.modules)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, str(lockdir)], capture_output=True,
                          text=True, check=True)  # fmt: skip
    assert done.stdout.splitlines()[-1] == "SHTAB False"
