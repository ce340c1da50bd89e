"""The `uvsweep` command line: argument parsing, the commands, and exit codes."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from enum import IntEnum

from uvsweep import __version__
from uvsweep.model import LockState, ScanError, plural

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class ExitStatus(IntEnum):
    """Every exit code uvsweep uses (documented in the README)."""

    OK = 0
    ERROR = 1  # could not do what was asked: the message on stderr says why
    USAGE = 2  # bad arguments
    FOUND = 3  # `scan --fail-on`: some file is in one of the given states
    PARTIAL = 4  # some dirs or files could not be scanned or removed (listed in `errors`)
    BUSY = 5  # `clean`: uv processes are running, so nothing was removed
    NO_DISPLAY = 6  # the tray app: no graphical session, or the display cannot be opened
    HIDDEN = 7  # `clean`: processes that could use the files are hidden from us; nothing removed
    INTERRUPTED = 130  # Ctrl-C


class UsageError(Exception):
    """Bad arguments that argparse cannot catch by itself (exit 2)."""


class CommandError(Exception):
    """The command could not do what was asked; the message says why (exit 1)."""


#: `--quiet`: no report on stdout (except --json), no notes, warnings or progress on stderr.
_quiet = False


def _err(message: str) -> None:
    """An error: always shown, `--quiet` or not."""
    from uvsweep import colour  # noqa: PLC0415

    print(f"{colour.paint('uvsweep:', 'error', sys.stderr)} {message}", file=sys.stderr)


def _note(message: str) -> None:
    """A note, warning or progress line on stderr: `--quiet` leaves it out."""
    if not _quiet:
        _err(message)


def _show_errors(errors: Sequence[ScanError], most: int = 20) -> None:
    """Errors on stderr, one a line; past `most`, a count pointing to --json."""
    for error in errors[:most]:
        _err(f"{error.path}: {error.message}")
    if len(errors) > most:
        _err(f"... and {plural(len(errors) - most, 'more error')} (see --json)")


def _output(as_json: bool, document: Callable[[], object], text: Callable[[], str]) -> None:
    """The JSON document or the text, on stdout."""
    if as_json:
        import json  # noqa: PLC0415

        # one write: `json.dump` writes each token, a syscall each where stdout is unbuffered
        sys.stdout.write(json.dumps(document(), indent=2) + "\n")
    elif not _quiet:
        output = text()
        if output:
            print(output)


def _parse_states(values: Sequence[str]) -> frozenset[LockState]:
    states = set()
    for value in values:
        if not value.strip(" ,"):
            raise UsageError("--fail-on: name at least one state (e.g. --fail-on orphaned)")
        for raw in value.split(","):
            word = raw.strip().lower()
            if not word:
                continue
            try:
                states.add(LockState(word))
            except ValueError:
                choices = ", ".join(s.value for s in LockState)
                raise UsageError(
                    f"--fail-on: unknown state {word!r} (choose from {choices})"
                ) from None
    return frozenset(states)


# ---- scan -------------------------------------------------------------------------------------


def cmd_scan(args: argparse.Namespace) -> ExitStatus:
    """List every uv lock file in the temp dirs with its state."""
    from uvsweep import report, scanner, settings  # noqa: PLC0415 - keep --help/--version fast

    fail_on = _parse_states(args.fail_on or ())
    config = settings.load()
    for warning in config.warnings:
        _note(warning)
    dirs = scanner.resolve_dirs(args.dirs, config)
    snapshot = scanner.scan(dirs, settings=config, label=not args.no_labels)
    now = time.time()
    from uvsweep.locations import tmpdir_warning  # noqa: PLC0415

    tmp_warning = tmpdir_warning()
    if tmp_warning:
        _note(f"warning: {tmp_warning}")
    notes = _gate_notes()
    _show_errors(snapshot.errors)
    colours = _colours(sys.stdout)
    _output(args.json, lambda: report.snapshot_json(snapshot, now, notes=notes),
            lambda: report.snapshot_text(snapshot, now, paint=colours))  # fmt: skip
    if not args.json:
        for note in notes:
            _note(f"note: {note}")
    if not args.json and snapshot.hidden_processes and snapshot.files:
        _note(
            f"note: {plural(snapshot.hidden_processes, 'process', 'processes')} of other users"
            " could not be inspected for open files (run as root to see them)."
        )
    if fail_on and snapshot.in_states(fail_on):
        return ExitStatus.FOUND
    if snapshot.errors:
        return ExitStatus.PARTIAL
    return ExitStatus.OK


def _colours(stream: Any) -> Callable[[str, str], str] | None:
    """How to colour a word for `stream` (by state or role name), or None for plain text."""
    from uvsweep import colour  # noqa: PLC0415

    return colour.painter(stream)


def _gate_notes() -> tuple[str, ...]:
    """What the uv gate cannot see here (hidepid, a child PID namespace), without a process
    walk."""
    from uvsweep import uvgate  # noqa: PLC0415 - not the cleaner: scan stays light
    from uvsweep.processes import ProcessTable  # noqa: PLC0415

    return uvgate.hidden_notes(ProcessTable())


# ---- clean ------------------------------------------------------------------------------------


def parse_duration(text: str) -> float:
    """`90`, `90s`, `10m`, `1.5h`, `2d`, `1w` -> seconds (the syntax `config set` takes too)."""
    from uvsweep.settings import parse_duration as parse  # noqa: PLC0415

    try:
        return parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def parse_dir(text: str) -> str:
    """A `--dir` value: any path but the empty string (which would silently mean `.`)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty dir name would mean the current dir: give one")
    return text


class _Status:
    """One line of progress on stderr: rewritten in place on a terminal, else printed sparingly."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = ""
        self.key: object = None
        self.printed_at = 0.0

    def show(self, message: str, key: object) -> None:
        """Show `message`; off a terminal, only when `key` changes or every 30 s."""
        if _quiet:
            return
        if self.tty:
            sys.stderr.write("\r\x1b[K" + message)
            sys.stderr.flush()
        elif key != self.key or time.monotonic() - self.printed_at > 30:
            print(message, file=sys.stderr)
            self.printed_at = time.monotonic()
        self.key = key
        self.last = message

    def done(self) -> None:
        if self.tty and self.last:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
        self.last = ""


def _wait_for_idle(limit: float | None, status: _Status) -> bool:
    """Wait until no *active* uv process is alive (parked ones only wait for the command they
    run, and are never waited for); False if `limit` seconds pass first."""
    from uvsweep import cleaner  # noqa: PLC0415
    from uvsweep.report import process_line  # noqa: PLC0415

    began = time.monotonic()
    try:
        while True:
            running = cleaner.running_uv()
            if not running:
                return True
            waited = time.monotonic() - began
            if limit is not None and waited >= limit:
                return False
            first = process_line(running[0], time.time())
            more = f" and {len(running) - 1} more" if len(running) > 1 else ""
            status.show(
                f"waiting for uv to finish: {first}{more} [{int(waited)}s]",
                key=frozenset(proc.pid for proc in running),
            )
            time.sleep(0.25)
    finally:
        status.done()


def cmd_clean(args: argparse.Namespace) -> ExitStatus:
    """Safely remove orphaned uv lock files."""
    from uvsweep import cleaner, report, scanner, settings  # noqa: PLC0415

    if args.all_users and hasattr(os, "geteuid") and os.geteuid() != 0:
        raise UsageError(
            "--all-users needs root: other users' lock files can only be removed by root "
            "(without it, your own orphaned files are removed)"
        )
    config = settings.load()
    for warning in config.warnings:
        _note(warning)
    dirs = scanner.resolve_dirs(args.dirs, config)
    status = _Status()
    waiting = args.wait is not None
    limit = None if args.wait in (None, float("inf")) else args.wait
    began = time.monotonic()

    def progress(message: str) -> None:
        _note(message)

    while True:
        outcome = cleaner.clean(
            dirs,
            min_age=args.min_age,
            all_users=args.all_users,
            dry_run=args.dry_run,
            gate=not args.ignore_running_uv,
            progress=progress,
            accept_hidden=args.accept_hidden_processes or None,
        )
        if not (outcome.busy and waiting and not args.dry_run):
            break
        remaining = None if limit is None else max(0.0, limit - (time.monotonic() - began))
        if (remaining is not None and remaining <= 0) or not _wait_for_idle(remaining, status):
            break  # still busy after --wait's limit: report it below
    now = time.time()
    _show_errors(outcome.errors)
    colours = _colours(sys.stdout)
    _output(args.json, lambda: report.clean_json(outcome, now),
            lambda: report.clean_text(outcome, now, paint=colours))  # fmt: skip
    for note in [*outcome.gate_notes, *outcome.notes]:
        _note(f"note: {note}")
    if outcome.hidden_processes and not outcome.busy:
        _note(
            f"note: the open files of {plural(outcome.hidden_processes, 'process', 'processes')}"
            " of other users could not be inspected (root can); every user's locks, waits and"
            " uv processes were"
        )
    if outcome.keepers:
        pids = ", ".join(str(pid) for pid in outcome.keepers)
        _note(
            f"note: a uvsweep keeper (pid {pids}) holds the lock at the names of files a process"
            " opened during removal, until that process is done with the old file"
        )
    if outcome.busy:
        return ExitStatus.BUSY
    if outcome.blind:
        _err(f"nothing removed: {outcome.blind} (--accept-hidden-processes to clean anyway)")
        return ExitStatus.HIDDEN
    if outcome.errors:
        return ExitStatus.PARTIAL
    return ExitStatus.OK


# ---- watch ------------------------------------------------------------------------------------


class _WatchOutput:
    """What `watch` prints: text lines or JSON lines, flushed as they come."""

    def __init__(self, as_json: bool, done: Any, min_age: float | None) -> None:
        self.as_json = as_json
        self.done = done  # set when the reader goes away
        self.min_age = min_age
        self.previous: Any = None

    def emit(self, lines: list[str]) -> None:
        try:
            for line in lines:
                sys.stdout.write(line + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            self.done.set()  # the reader left: stop quietly

    def event(self, kind: str, **fields: Any) -> None:
        import json  # noqa: PLC0415

        line = {"version": 1, "time": round(time.time(), 3), "event": kind, **fields}
        self.emit([json.dumps(line)])

    def on_change(self, snapshot: Any, change: Any) -> None:
        import json  # noqa: PLC0415

        from uvsweep import report  # noqa: PLC0415

        now = time.time()
        if self.as_json:
            events = report.watch_events(snapshot, change, self.previous, now)
            self.emit([json.dumps(event) for event in events])
        else:
            self.emit(report.watch_lines(snapshot, change, self.previous, now))
        self.previous = snapshot

    def on_warning(self, message: str) -> None:
        if self.as_json:
            self.event("warning", message=message)
        else:
            _note(f"warning: {message}")

    def run_clean(self, where: Sequence[str]) -> Any:
        from uvsweep import cleaner, report  # noqa: PLC0415

        outcome = cleaner.clean(where, min_age=self.min_age or 0.0)
        if self.as_json:
            self.event("cleaned", **report.clean_json(outcome, time.time()))
        elif outcome.removed:
            clock = time.strftime("%H:%M:%S")
            removed, kept = len(outcome.removed), len(outcome.skipped)
            self.emit([f"{clock} cleaned: removed {removed}, kept {kept}"])
        return outcome


def cmd_watch(args: argparse.Namespace) -> ExitStatus:
    """Print a line for every change to the uv lock files, until Ctrl-C or SIGTERM."""
    import signal  # noqa: PLC0415
    import threading  # noqa: PLC0415

    from uvsweep import autoclean, scanner, settings, watcher  # noqa: PLC0415

    config = settings.load()
    for warning in config.warnings:
        _note(warning)
    dirs = scanner.resolve_dirs(args.dirs, config)
    done = threading.Event()
    output = _WatchOutput(args.json, done, args.clean_when_idle)
    live = watcher.Watcher(
        dirs,
        settings=config,
        safety_interval=args.safety_interval or config.safety_rescan,
        label=not args.no_labels,
        on_warning=output.on_warning,
    )
    if args.clean_when_idle is not None:
        autoclean.AutoClean(min_age=args.clean_when_idle, clean=output.run_clean).attach(live)
    live.subscribe(output.on_change)

    def stop(_signum: int, _frame: object) -> None:
        done.set()

    previous_handlers = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        live.start()
        done.wait()  # a signal interrupts this wait on the main thread
    finally:
        live.stop()
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
    return ExitStatus.OK


# ---- tray -------------------------------------------------------------------------------------


def _watch_signals(on_signal: Callable[[], None]) -> Callable[[], None]:
    """Run `on_signal` on a thread of its own at SIGINT/SIGTERM; returns a function that stops
    that thread. (Signals are blocked in every other thread, so a toolkit's main loop in C never
    swallows them.)"""
    import signal  # noqa: PLC0415
    import threading  # noqa: PLC0415

    wanted = {signal.SIGINT, signal.SIGTERM}
    if not hasattr(signal, "pthread_sigmask"):  # Windows
        previous = signal.signal(signal.SIGINT, lambda _s, _f: on_signal())

        def restore() -> None:
            signal.signal(signal.SIGINT, previous)

        return restore
    signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
    done = threading.Event()

    def wait() -> None:
        signal.sigwait(wanted)
        if not done.is_set():
            on_signal()

    thread = threading.Thread(target=wait, name="uvsweep-signals", daemon=True)
    thread.start()

    def stop() -> None:
        done.set()
        if thread.is_alive():
            os.kill(os.getpid(), signal.SIGTERM)  # wakes sigwait; blocked everywhere else
            thread.join(1.0)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, wanted)

    return stop


def cmd_tray(args: argparse.Namespace) -> ExitStatus:
    """Run the tray app until Quit, SIGTERM or the end of the session."""
    from uvsweep.tray import lean  # noqa: PLC0415

    lean.one_malloc_arena()  # first: before any thread has an arena of its own
    from uvsweep import autostart, scanner, settings  # noqa: PLC0415
    from uvsweep.tray import app as tray  # noqa: PLC0415
    from uvsweep.tray.instance import SingleInstance  # noqa: PLC0415

    config = settings.load(repair=True)
    for warning in config.warnings:
        _err(warning)
    from uvsweep.tray import backends  # noqa: PLC0415

    choice = backends.choose(config.tray_backend)
    if choice.name == "none":
        _err(f"{choice.why}: the tray app needs a desktop session. In a terminal, use"
             " `uvsweep scan`, `uvsweep clean` or `uvsweep watch`.")  # fmt: skip
        return ExitStatus.NO_DISPLAY
    instance = SingleInstance()
    try:
        acquired = instance.acquire()
    except OSError as err:
        raise CommandError(f"cannot take the single-instance lock {instance.path}: {err}") from err
    if not acquired:
        holder = instance.holder()
        running = f"uvsweep is already running{f' (pid {holder})' if holder else ''}"
        if instance.ask_to_show():
            print(f"{running}; asked it to show its icon again.")
        else:
            print(f"{running}.")
        return ExitStatus.OK
    factory: Callable[[Any], Any] = tray.pystray_icon
    if choice.name == "sni":
        os.environ["PYSTRAY_BACKEND"] = "dummy"  # only pystray's menu classes are used
        factory = tray.sni_icon
    else:
        os.environ["PYSTRAY_BACKEND"] = choice.name
    problem = tray.load_backend()
    if problem:
        instance.release()
        _err(f"cannot show a tray icon ({problem}). In a terminal, use `uvsweep scan`,"
             " `uvsweep clean` or `uvsweep watch`.")  # fmt: skip
        return ExitStatus.NO_DISPLAY
    dirs = scanner.resolve_dirs(args.dirs, config)
    import logging  # noqa: PLC0415 - not on the scan path

    from uvsweep.tray import logfile  # noqa: PLC0415

    log_path = logfile.setup() or ""
    logging.getLogger("uvsweep.tray").info("tray started: backend %s; watching %s", choice,
                                           ", ".join(dirs))  # fmt: skip
    app = tray.TrayApp(dirs, config, save_settings=settings.save,
                       autostart=autostart.for_platform(), backend=choice,
                       log_path=log_path)  # fmt: skip
    stop_signals = _watch_signals(app.quit)  # first: threads started later block the signals
    instance.serve(app.reshow)  # a second `uvsweep` asks us to show ourselves again
    try:
        app.run(factory)
    finally:
        stop_signals()
        instance.release()
        logfile.close()
    return ExitStatus.OK


def run_notifyd(argv: Sequence[str]) -> int:
    """The tray's notification helper, `uvsweep _notifyd [--icon PATH]` (not in --help; see
    uvsweep.tray.notifyd)."""
    from uvsweep.tray import notifyd  # noqa: PLC0415

    icon = argv[argv.index("--icon") + 1] if "--icon" in argv[:-1] else None
    return notifyd.main(icon)


# ---- doctor -----------------------------------------------------------------------------------


def cmd_doctor(args: argparse.Namespace) -> ExitStatus:
    """Say what uvsweep sees of this machine and why it chose what it chose."""
    from uvsweep import doctor  # noqa: PLC0415

    info = doctor.report()
    _output(args.json, lambda: info, lambda: doctor.text(info))
    return ExitStatus.OK


# ---- autostart --------------------------------------------------------------------------------


def cmd_autostart(args: argparse.Namespace) -> ExitStatus:
    """Turn start-at-login on or off, or say whether it is on."""
    from uvsweep import autostart  # noqa: PLC0415

    writer = autostart.for_platform()
    try:
        if args.action == "enable":
            try:
                command = autostart.installed_command()
            except ValueError as err:
                raise CommandError(str(err)) from None
            state = writer.enable(command)
        elif args.action == "disable":
            state = writer.disable()
        else:
            state = writer.status()
    except OSError as err:
        raise CommandError(f"autostart {args.action}: {err.strerror or err}") from err
    if args.action == "status" or not _quiet:
        print("enabled" if state.enabled else "disabled")
        print(f"entry: {state.where}")
        if state.detail:
            print(f"{'runs' if state.enabled else 'why'}: {state.detail}")
    if args.action == "enable" and not state.enabled:
        raise CommandError(f"the entry was written but the system reports it off: {state.detail}")
    return ExitStatus.OK


# ---- config -----------------------------------------------------------------------------------


def _setting(key: str | None, action: str) -> Any:
    """The settings.Field named `key`; a usage error that lists them when there is none."""
    from uvsweep import settings  # noqa: PLC0415

    keys = [f.key for f in settings.FIELDS]
    if key is None:
        example = (
            " VALUE` (e.g. `uvsweep config set notifications off`)" if action == "set" else "`"
        )
        raise UsageError(f"config {action}: name a setting: `uvsweep config {action} KEY{example}"
                         f" (settings: {', '.join(keys)})")  # fmt: skip
    field = next((f for f in settings.FIELDS if f.key == key), None)
    if field is None:
        raise UsageError(f"unknown setting {key!r}{did_you_mean(key, keys)} (settings:"
                         f" {', '.join(keys)})")  # fmt: skip
    return field


def cmd_config(args: argparse.Namespace) -> ExitStatus:
    """Show, set or reset the settings in the settings file."""
    from uvsweep import settings  # noqa: PLC0415

    path = settings.config_path()
    if args.action in ("path", "show", "unset") and args.value is not None:
        raise UsageError(f"config {args.action}: unexpected {args.value!r}")
    if args.action == "path" and args.key is not None:
        raise UsageError(f"config path takes no KEY (got {args.key!r})")
    if args.json and args.action != "show":
        raise UsageError("--json goes with `config show`")
    listing = args.action == "path" or (args.action == "show" and args.key is None)
    field = None if listing else _setting(args.key, args.action)
    if args.action == "path":
        print(path)
        if not os.path.exists(path):
            _err("it does not exist yet: the defaults apply (`uvsweep config set` creates it)")
        return ExitStatus.OK
    writing = args.action in ("set", "unset")
    config = settings.load(path, repair=writing)
    for warning in config.warnings:
        _err(warning)
    if args.action == "show":
        shown = config.values()
        if field is not None:
            shown = {field.key: shown[field.key]}
        if args.json:
            import json  # noqa: PLC0415

            values = {k: list(v) if isinstance(v, tuple) else v for k, v in shown.items()}
            print(json.dumps({"path": path, "settings": values}, indent=2))
        elif field is not None:
            print(f"{field.key} = {settings.toml_value(shown[field.key])}")
        else:
            print(f"# {path}" + ("" if os.path.exists(path) else " (not created yet: defaults)"))
            print(settings.dumps(config).split("\n", 1)[1], end="")
        return ExitStatus.OK
    assert field is not None  # set and unset named one (_setting)
    if args.action == "set":
        if args.value is None:
            raise UsageError(f"config set {args.key}: give a value")
        try:
            value = settings.parse_text(field, args.value)
        except ValueError as err:
            raise UsageError(f"{args.key}: {err}") from None
    else:
        value = field.default
    try:
        settings.save(config.replace(**{field.key: value}), path)
    except OSError as err:
        raise CommandError(f"cannot write {path}: {err.strerror or err}") from err
    if not _quiet:
        print(f"{field.key} = {settings.toml_value(value)}")
    return ExitStatus.OK


# ---- desktop-entry, completion, help -----------------------------------------------------------


def cmd_desktop_entry(args: argparse.Namespace) -> ExitStatus:
    """Put uvsweep in the Linux application menu, take it out, or say whether it is there."""
    from uvsweep import autostart  # noqa: PLC0415

    if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        raise CommandError("desktop-entry is for Linux and the BSDs: the macOS app and the Windows"
                           " installer add their own launchers")  # fmt: skip
    menu = autostart.MenuEntry()
    try:
        if args.action == "install":
            try:
                command = autostart.installed_command()
            except ValueError as err:
                raise CommandError(str(err)) from None
            state = menu.install(command)
        elif args.action == "remove":
            state = menu.remove()
        else:
            state = menu.status()
    except OSError as err:
        raise CommandError(f"desktop-entry {args.action}: {err.strerror or err}") from err
    if args.action == "status" or not _quiet:
        print("installed" if state.enabled else "not installed")
        print(f"entry: {state.where}")
        if state.detail:
            print(f"{'runs' if state.enabled else 'why'}: {state.detail}")
    return ExitStatus.OK


def cmd_completion(args: argparse.Namespace) -> ExitStatus:
    """Print the completion script for a shell, generated from the parser by shtab."""
    import shtab  # noqa: PLC0415 - only here: it costs start-up time every other command skips

    print(shtab.complete(args.parser, shell=args.shell), end="")
    return ExitStatus.OK


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every command's parser by name."""
    for action in parser._actions:  # argparse keeps its subparsers only there
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cmd_help(args: argparse.Namespace) -> ExitStatus:
    """`help`, `help COMMAND` or `help states`."""
    if args.topic == "states":
        print(STATES_TEXT, end="")
    elif args.topic is None:
        args.parser.print_help()
    else:
        _commands(args.parser)[args.topic].print_help()
    return ExitStatus.OK


# ---- lockname ---------------------------------------------------------------------------------


def _lock_keys(args: argparse.Namespace) -> list[Any]:
    """The keys uv's releases hash for the requested environment (labels.LockKey)."""
    from uvsweep import labels  # noqa: PLC0415

    target: str | None = args.target
    kind = args.kind
    if kind == "system":
        if target is not None:
            raise UsageError("--system takes no PATH: it finds the interpreter on PATH as uv does")
        found = labels.system_interpreter()
        if found is None:
            raise CommandError("--system: no `python` or `python3` on PATH")
        target, kind = found, "python"
    if target is None:
        raise UsageError("PATH is required (except with --system)")
    if kind is None:
        if os.path.isdir(target):
            kind = "project"
        elif (
            target.endswith(".py") or target in ("-",) or target.startswith(("http://", "https://"))
        ):
            kind = "script"
        elif os.path.isfile(target) and os.access(target, os.X_OK):
            kind = "python"
        else:
            raise UsageError(
                f"cannot tell what {target!r} is: pass --project, --script, --python or --build"
            )
    try:
        if kind == "python":
            return labels.interpreter_keys(target)
        if kind == "script":
            return labels.script_keys(target)
        if kind == "build":
            if not os.path.isdir(target):
                raise CommandError(f"--build: {target!r} is not a directory")
            return labels.build_keys(target)
        return labels.project_keys(target)
    except ValueError as err:
        raise CommandError(f"--{kind}: {err}") from err


def cmd_lockname(args: argparse.Namespace) -> ExitStatus:
    """Print the temp-dir lock file(s) uv would use for an environment, and which releases."""
    from uvsweep.locations import uv_temp_dir  # noqa: PLC0415
    from uvsweep.naming import PathStyle, lock_name, path_digest, str_digest  # noqa: PLC0415

    base = None if args.name_only else uv_temp_dir()
    if args.raw:
        if args.target is None:
            raise UsageError("--raw needs a KEY")
        if args.as_str:
            name = lock_name(str_digest(args.target))
        else:
            style = (
                PathStyle(args.style)
                if args.style
                else (PathStyle.WINDOWS if sys.platform == "win32" else PathStyle.POSIX)
            )
            name = lock_name(path_digest(args.target, style))
        print(name if base is None else os.path.join(base, name))
        return ExitStatus.OK
    if args.as_str or args.style:
        raise UsageError("--str and --style go with --raw")
    from uvsweep.labels import NoLockError  # noqa: PLC0415

    try:
        keys = _lock_keys(args)
    except NoLockError as err:
        reason = str(err)
        if args.json:
            _output(as_json=True, document=lambda: {"version": 1, "locks": [], "no_lock": reason},
                    text=str)  # fmt: skip
        else:
            print(f"uv takes no lock for this: {reason}")
        return ExitStatus.OK
    if args.json:
        _output(as_json=True, document=lambda: {"version": 1, "no_lock": None, "locks": [
            {"path": os.path.join(base or "", key.name()), "name": key.name(),
             "kind": key.kind.value, "key": key.key, "hashed_as": "str" if key.text else "path",
             "first": key.first(), "last": key.last(), "uv": key.releases()}
            for key in keys
        ]}, text=str)  # fmt: skip
        return ExitStatus.OK
    for key in keys:
        name = key.name()
        shown = name if base is None else os.path.join(base, name)
        print(shown if args.bare else f"{shown}\t{key.releases()}")
    return ExitStatus.OK


# ---- parser -----------------------------------------------------------------------------------

#: The states and exit codes, in one place: `uvsweep help states` prints it, the README has the
#: same lines (a test checks), and every other help text points here.
STATES_TEXT = """\
states (each uv lock file is in exactly one):
  orphaned    nobody holds, waits for or has it open, and it is yours: safe to remove
  foreign     like orphaned, but another user's (it may stop your uv from locking)
  held        a running process holds the lock
  waiting     a process waits for the lock; its holder is not visible
  open        a process has it open without a lock (uv between creating and locking it)
  suspicious  a symlink, hard link, non-regular, non-empty or unreadable file: never touched

exit codes:
  0    ok
  1    error: the command could not do what was asked (the message says why)
  2    usage: bad arguments
  3    scan --fail-on matched at least one file (wins over 4)
  4    some dirs or files could not be scanned or removed; the rest were done
  5    clean: active uv is running, so nothing was removed (--wait waits for it)
  6    tray: no graphical session, or the display cannot be opened
  7    clean: processes that could use the files are hidden, so nothing was removed
  130  interrupted (Ctrl-C)
"""

_SEE_STATES = "states and exit codes: `uvsweep help states`\n"

_EPILOG = (
    """\
commands have their own help: `uvsweep COMMAND --help` (or `uvsweep help COMMAND`)
"""
    + _SEE_STATES
    + """
--quiet prints only errors: no report on stdout (unless --json), no notes, warnings or
progress on stderr, and no confirmation from `config set`, `autostart enable` and the like;
the exit code says how it went. Queries (`config show`, `doctor`, `lockname`...) still print.
NO_COLOR=1 turns colour off; FORCE_COLOR=1 turns it on when output is not a terminal.
"""
)

_CLEAN_DESCRIPTION = """\
Remove the uv lock files nobody uses any more, without ever breaking uv's locking.

First the gate: if an active uv process of any user is running, nothing is removed
and it is listed (exit 5); --wait waits for it instead. A parked uv (`uv run`,
`uvx`... that has started its command and only waits for it) takes no lock again:
it is listed, never waited for. uvsweep's own parents (`uv run uvsweep`,
`uvx uvsweep`) do not count.

Then each file is removed only if it is orphaned: exactly uv's name, a regular
empty file with one link, yours (or anybody's with --all-users as root), with no
holder, waiter or other process that has it open, checked again while uvsweep
holds its lock. The name is unlinked while the lock is held; if a process got
hold of the file meanwhile, the lock is handed over to a new file and the file is
kept. Everything that stays is listed with the reason."""

_CLEAN_EPILOG = (
    """\
examples:
  uvsweep clean                      # your orphaned files in the temp dirs
  uvsweep clean --dry-run            # what would go, and why the rest stays
  uvsweep clean --min-age 1d --json  # only files older than a day; a report for scripts
  uvsweep clean --wait=600           # wait up to 10 minutes for running uv to finish

in a Dockerfile (as root), so no lock file is baked into the layer (a RUN step's own
PID namespace hides the processes outside it; its /tmp is its own, so accept that):
  RUN uv pip install --system -r requirements.txt \\
      && uvx uvsweep clean --all-users --accept-hidden-processes

"""
    + _SEE_STATES
)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter, sized without `shutil` (argparse imports it just for the width)."""

    def __init__(self, prog: str) -> None:
        try:
            width = int(os.environ.get("COLUMNS", "0")) or os.get_terminal_size().columns
        except (OSError, ValueError):
            width = 80
        super().__init__(prog, width=max(40, width - 2))


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """`; did you mean 'scan'?` for the closest choice, or nothing when none is close."""
    import difflib  # noqa: PLC0415 - only on a typo

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose unknown-choice errors suggest the closest choice."""

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        # argparse's own check (a private method, the same from 3.10 to 3.13), with a hint
        if action.choices is not None and value not in action.choices:
            names = [str(choice) for choice in action.choices]
            hint = did_you_mean(str(value), names) if isinstance(value, str) else ""
            raise argparse.ArgumentError(
                action, f"invalid choice: {value!r}{hint} (choose from {', '.join(names)})"
            )


def _dir_and_json(parser: argparse.ArgumentParser, verb: str, document: str) -> None:
    parser.add_argument(
        "--dir", dest="dirs", action="append", metavar="DIR", type=parse_dir,
        help=f"{verb} DIR instead of the defaults (uv's temp dir, /tmp, and `dirs` from "
        "settings); repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--json", action="store_true", help=f"print the JSON {document} (see README)"
    )


def _command(
    sub: Any, name: str, func: Callable[[argparse.Namespace], ExitStatus], **options: Any
) -> argparse.ArgumentParser:
    """A subcommand that runs `func`, formatted without importing shutil (start-up time)."""
    parser: argparse.ArgumentParser = sub.add_parser(name, formatter_class=_Formatter, **options)
    parser.set_defaults(func=func)
    parser.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
        help="print only errors (what it leaves out: `uvsweep --help`)",
    )  # fmt: skip
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command."""
    parser = _Parser(
        prog="uvsweep",
        description="Find the lock files uv leaves in the temp dir, see what each one guards,\n"
        "and whether anything still uses it.",
        epilog=_EPILOG,
        formatter_class=_Formatter,
    )
    parser.add_argument("-V", "--version", action="version", version=f"uvsweep {__version__}")
    parser.add_argument(
        "-q", "--quiet", action="store_true",
        help="print only errors; the exit code says how it went (details below)",
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    scan = _command(
        sub,
        "scan",
        cmd_scan,
        help="list uv lock files in the temp dirs with their state",
        description="List every uv lock file (uv-<16 hex>.lock) directly inside the temp dirs:\n"
        "its state, age, the environment it guards and who holds it. Nothing is changed.",
        epilog="examples:\n  uvsweep scan\n  uvsweep scan --dir /tmp --json\n"
        "  uvsweep scan --fail-on orphaned,foreign     # in CI or a Dockerfile\n"
        "  uvsweep scan -q --fail-on orphaned          # only the exit code: 3 if any\n\n"
        + _SEE_STATES,
    )
    _dir_and_json(scan, "scan", "document")
    scan.add_argument(
        "--fail-on", action="append", metavar="STATE[,STATE]",
        help="exit 3 if any file is in one of these states (e.g. orphaned,foreign)",
    )  # fmt: skip
    scan.add_argument(
        "--no-labels", action="store_true",
        help="skip working out which environment each file guards (faster)",
    )  # fmt: skip

    clean = _command(
        sub,
        "clean",
        cmd_clean,
        help="safely remove orphaned uv lock files",
        description=_CLEAN_DESCRIPTION,
        epilog=_CLEAN_EPILOG,
    )
    _dir_and_json(clean, "clean", "report")
    clean.add_argument(
        "--min-age", type=parse_duration, default=0.0, metavar="DURATION",
        help="only remove files at least this old: 90, 90s, 10m, 2h, 1d (default: 0)",
    )  # fmt: skip
    clean.add_argument(
        "--all-users", action="store_true",
        help="as root: also remove other users' orphaned files (same checks)",
    )  # fmt: skip
    clean.add_argument(
        "-n", "--dry-run", action="store_true",
        help="remove nothing; say what would be removed and why the rest stays",
    )  # fmt: skip
    clean.add_argument(
        "--wait", nargs="?", type=parse_duration, const=float("inf"), metavar="SECONDS",
        help="if active uv is running, wait until it is done or parked (at most SECONDS; "
        "default: no limit), then clean",
    )  # fmt: skip
    clean.add_argument(
        "--ignore-running-uv", action="store_true",
        help="skip the gate and clean while uv runs; every per-file check still applies, but a "
        "uv process that is just about to open a file cannot be seen (use with care)",
    )  # fmt: skip
    clean.add_argument(
        "--accept-hidden-processes", action="store_true",
        help="clean even where processes are hidden from uvsweep (a child PID namespace, /proc "
        "with hidepid): a hidden process that has a file open cannot be seen (exit 7 without "
        "it; UVSWEEP_ACCEPT_HIDDEN_PROCESSES=1 does the same)",
    )  # fmt: skip

    watch = _command(
        sub,
        "watch",
        cmd_watch,
        help="print a line whenever a uv lock file appears, changes state or goes",
        description="Watch the temp dirs and print one line per change: a file added (with its\n"
        "state and what it guards), a state change (held -> orphaned when its holder\n"
        "exits) or a file removed. The first line sums up the dirs as they are. File\n"
        "system events and uv process exits trigger rescans at once; a slow safety\n"
        "rescan catches anything they miss. Ctrl-C or SIGTERM stops it (exit 0).",
        epilog="examples:\n  uvsweep watch\n"
        "  uvsweep watch --json | jq -c 'select(.event != \"initial\")'\n"
        "  uvsweep watch --clean-when-idle 1h   # remove orphans an hour old whenever uv is idle\n",
    )
    _dir_and_json(watch, "watch", "lines")
    watch.add_argument(
        "--safety-interval", type=parse_duration, metavar="DURATION",
        help="full rescan at least this often (default: `safety_rescan` from settings, 60s)",
    )  # fmt: skip
    watch.add_argument(
        "--no-labels", action="store_true",
        help="skip working out which environment each file guards",
    )  # fmt: skip
    watch.add_argument(
        "--clean-when-idle", nargs="?", type=parse_duration, const=0.0, metavar="MIN_AGE",
        help="whenever no active uv process runs, safely remove orphaned files at least MIN_AGE "
        "old (default 0), as `uvsweep clean` would",
    )  # fmt: skip

    tray_cmd = _command(
        sub,
        "tray",
        cmd_tray,
        help="run the tray app (what `uvsweep` with no command does)",
        epilog="The app menu entry (`uvsweep desktop-entry install`) starts it again after Quit.",
        description="Run the tray app: a badge with the number of orphaned uv lock files, a menu\n"
        "that lists them, one-click safe cleanup and notifications. One per user: a second\n"
        "start says so and exits 0. Without a graphical session it exits 6.",
    )
    tray_cmd.add_argument(
        "--dir", dest="dirs", action="append", metavar="DIR", type=parse_dir,
        help="watch DIR instead of the defaults; repeatable",
    )  # fmt: skip

    doc = _command(
        sub,
        "doctor",
        cmd_doctor,
        help="say what uvsweep sees here: tray backend, notifications, dirs, limits, uv",
        description="Print what uvsweep sees of this machine: the tray backend it would use and\n"
        "why, the notification service, start-at-login state, the dirs it watches, inotify\n"
        "limits, running uv processes, and what permissions hide. Changes nothing.",
    )
    doc.add_argument("--json", action="store_true", help="print JSON")

    start = _command(
        sub,
        "autostart",
        cmd_autostart,
        help="start the tray app at login (enable, disable, status)",
        description="Start the uvsweep tray app when you log in, or stop doing so. `status`\n"
        "prints `enabled` or `disabled` first, then where the entry lives. `enable` writes\n"
        "the command of this installed uvsweep: an XDG autostart entry on Linux, a\n"
        "LaunchAgent on macOS, the HKCU Run key on Windows.",
    )
    start.add_argument("action", choices=("enable", "disable", "status"))

    config = _command(
        sub,
        "config",
        cmd_config,
        help="show or change the settings",
        description="Show or change the settings file (TOML). Writes are atomic; a file that is\n"
        "not valid TOML is moved aside, never overwritten.",
        epilog="examples:\n  uvsweep config path\n  uvsweep config show\n"
        "  uvsweep config show notifications\n"
        "  uvsweep config set notifications false\n  uvsweep config set auto_clean_min_age 2h\n"
        "  uvsweep config set dirs /scratch/tmp"
        f"{os.pathsep}/data/tmp\n  uvsweep config unset auto_clean_min_age\n",
    )
    config.add_argument("action", choices=("path", "show", "set", "unset"))
    config.add_argument(
        "key", nargs="?", metavar="KEY",
        help="with set/unset: the setting; with show: show only this one",
    )  # fmt: skip
    config.add_argument(
        "value", nargs="?", metavar="VALUE",
        help="with set: its new value (durations as for `clean --min-age`: 90, 10m, 2h, 1d)",
    )  # fmt: skip
    config.add_argument("--json", action="store_true", help="with show: print JSON")

    lockname = _command(
        sub,
        "lockname",
        cmd_lockname,
        help="print the temp lock file uv uses for a project, script or interpreter",
        description="Print the path of each temp-dir lock file uv would take for an environment,\n"
        "one per line, then a tab and the uv releases that use that name. Where uv takes no\n"
        "temp-dir lock, say so. Without a kind flag, a directory is a project, a .py file\n"
        "(or a URL, or - for stdin) a script and an executable an interpreter.",
        epilog="examples:\n"
        "  uvsweep lockname .                         # the project around the cwd\n"
        "  uvsweep lockname --system                  # `uv pip install --system`: the first\n"
        "                                             #  `python`, else `python3`, on PATH\n"
        "  uvsweep lockname --python python           # an interpreter by name or path\n"
        "  uvsweep lockname --raw /usr/local          # hash a Path key exactly as given\n"
        "  uvsweep lockname --raw --str 'https://example.com/s.py'\n",
    )
    kinds = lockname.add_mutually_exclusive_group()
    for flag, help_text in (
        ("project", "a project dir (uv's workspace discovery finds the root it locks)"),
        ("script", "a PEP 723 script (uv hashes its absolute path)"),
        ("python", "a non-venv interpreter or shim (runs it: sys.executable and sys.prefix)"),
        ("system", "the interpreter --system finds: `python`, then `python3`, on PATH"),
        ("build", "a source tree built by uv's setuptools frontend (uv-setuptools-*.lock)"),
    ):
        kinds.add_argument(
            f"--{flag}", dest="kind", action="store_const", const=flag, help=help_text
        )
    kinds.add_argument("--raw", action="store_true", help="hash KEY exactly as given, as a Path")
    lockname.add_argument("--str", dest="as_str", action="store_true", help="with --raw: a str key")
    lockname.add_argument(
        "--style",
        choices=("posix", "windows"),
        help="with --raw: whose Path rules (default: this OS)",
    )
    lockname.add_argument("--name-only", action="store_true", help="print names, not full paths")
    lockname.add_argument(
        "--bare", action="store_true", help="print only the paths (or names), without releases"
    )
    lockname.add_argument("--json", action="store_true", help="print JSON (see the README)")
    lockname.add_argument("target", metavar="PATH|KEY", nargs="?")

    entry = _command(
        sub,
        "desktop-entry",
        cmd_desktop_entry,
        help="add uvsweep to the Linux application menu, or take it out (install, remove, status)",
        description="Put uvsweep in the application menu, so the tray can be started again after\n"
        "Quit: `install` writes uvsweep.desktop into $XDG_DATA_HOME/applications (default\n"
        "~/.local/share/applications), starting this installed uvsweep's tray, and copies\n"
        "the icon into your hicolor icon theme there. `remove` takes both out again (the\n"
        "icon stays while the autostart entry uses it). The macOS app and the Windows\n"
        "installer have their launchers already.",
    )
    entry.add_argument("action", choices=("install", "remove", "status"))

    completion = _command(
        sub,
        "completion",
        cmd_completion,
        help="print a shell completion script (bash, zsh, fish)",
        description="Print the completion script for SHELL, generated from these very options.",
        epilog="install it:\n"
        "  bash: uvsweep completion bash > ~/.local/share/bash-completion/completions/uvsweep\n"
        "  zsh:  uvsweep completion zsh > ~/.zfunc/_uvsweep   # with ~/.zfunc on $fpath\n"
        "  fish: uvsweep completion fish > ~/.config/fish/completions/uvsweep.fish\n",
    )
    completion.add_argument("shell", choices=("bash", "zsh", "fish"))

    helper = _command(
        sub,
        "help",
        cmd_help,
        help="show the help of a command, or the states and exit codes (`help states`)",
        description="`uvsweep help COMMAND` is `uvsweep COMMAND --help`; `uvsweep help states`\n"
        "says what each state of a lock file means, and every exit code.",
    )
    helper.add_argument(
        "topic", nargs="?", metavar="TOPIC", choices=(*sub.choices, "states"),
        help="a command, or `states`",
    )  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    for stream in ("stdout", "stderr"):  # a windowed program (uvsweepw.exe, the macOS app) has none
        if getattr(sys, stream) is None:
            setattr(sys, stream, open(os.devnull, "w"))  # noqa: SIM115 - for the process's life
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["_notifyd"]:
        return run_notifyd(args_list[1:])
    if args_list[:1] == ["_keeper"]:
        from uvsweep.remove.handoff import keeper_main  # noqa: PLC0415

        return keeper_main(args_list[1:])
    parser = build_parser()
    args = parser.parse_args(args_list)
    if args.command is None:
        args = parser.parse_args([*args_list, "tray"])
    global _quiet  # noqa: PLW0603 - one setting for this run's messages
    _quiet = bool(getattr(args, "quiet", False))
    args.parser = parser
    try:
        return int(args.func(args))
    except UsageError as err:
        _err(str(err))
        return ExitStatus.USAGE
    except CommandError as err:
        _err(str(err))
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        _err("interrupted")
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:
        # `uvsweep scan | head`: the reader left; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitStatus.OK
