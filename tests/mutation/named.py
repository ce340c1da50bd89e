"""The mutants issue 12 names, applied by hand: each must make its tests fail (not hang).

    python tests/mutation/named.py [SCRATCH [WORD...]]   (WORD: only the mutants so named)

Works on a copy of the tree (never the work tree), runs each mutant's tests with a timeout in a
private PID namespace (as `run.sh`), and prints one line per mutant: KILLED (a test failed),
HUNG (the timeout ended it: a test that hangs is not a kill), ERROR (pytest could not run the
tests: a test id not found, nothing collected) or SURVIVED. Needs root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FINDINGS = "tests/integration/test_protocol_findings.py"
KILLS = "tests/integration/test_mutation_kills.py"
CLEANER_KILLS = "tests/integration/test_cleaner_kills.py"
PARTS = "tests/unit/test_protocol_parts.py"
PHASE = "tests/unit/test_uv_phase.py"
PSUTIL = "tests/unit/test_psutil_double.py"
PROCESSES = "app/uvsweep/processes.py"
POSIX_REMOVER = "app/uvsweep/remove/posix.py"
LINUX_PROBE = "app/uvsweep/probe/linux.py"
LOCK_TABLE_PARSE = "tests/unit/test_lock_table_parse.py"
WARMER = "tests/unit/test_table_warmer.py"
INIT_ENDING = "tests/unit/test_init_ending_with_us.py"
DARWIN_TEST = (
    "tests/unit/test_removers_other_os.py"
    "::test_darwin_remover_sees_openers_whatever_the_kernel_calls_the_path"
)
KEEPER_TEST = "test_a_keeper_holds_the_new_file_until_the_old_files_user_is_gone"
NEXT_GENERATION_ATTACKS = "tests/redteam/test_next_generation_attacks.py"
WARNING_TEST = "test_a_warning_that_cannot_be_written_never_ends_the_handoff"
PROGRESS_TEST = (
    "test_progress_that_cannot_be_written_never_stops_a_removal_between_unlink_and_handoff"
)
CLOSE_OLD = "                self.calls.close(self.old_fd)  # no name, no user"
NEXT_IN_LINE_TEST = (
    "test_a_replaced_next_generation_is_the_old_file_in_its_turn_and_the_last_one_is_closed"
)
ROOT_WAITER_TEST = (
    "test_a_root_waiter_seen_only_in_the_lock_table_keeps_the_file_of_a_non_root_cleaner"
)

B2_TESTS = "tests/redteam/test_before_check_skip.py"
ALONE = "tests/unit/test_alone.py"
B2_TESTS_REVIEW = "tests/redteam/test_lease_review.py"
B2_KEPT = "test_a_root_cleaner_without_ptrace_hands_over_a_file_another_user_had_open"
SEEING_WITHOUT_LEASES = (
    "tests/sim/test_blind_walk.py"
    "::test_without_leases_a_walk_that_sees_every_process_keeps_one_holder"
)
BLIND_SEARCH = (
    "tests/sim/test_blind_walk.py"
    "::test_every_schedule_of_a_blind_walk_within_two_preemptions_keeps_one_holder"
)
L8_TEST = "test_a_handoff_outlives_a_cleaner_that_is_its_pid_namespaces_first_process"
L8_OTHER_SIDE = (
    "test_a_cleaner_that_is_not_its_namespaces_first_process_exits_while_its_keeper_holds"
)
SIXTH = "tests/redteam/test_sixth_review.py"
M6_TEST = "test_an_open_that_breaks_the_kept_lease_before_the_close_is_handed_over"
ONE_WALK = "tests/integration/test_clean_protocol.py::test_one_fd_walk_per_batch"
PROTOCOL = "tests/integration/test_clean_protocol.py"
SCAN_LEASED = "test_a_file_another_cleaner_holds_the_lease_of_is_held_not_unreadable"
HIDDEN_WAITER = "test_a_waiter_the_walk_cannot_see_is_found_in_the_table_before_the_unlink"
BEFORE_UNLINK = "tests/redteam/test_lease_before_unlink.py"
BLOCKED_OPENER = "test_an_opener_waiting_on_the_lease_before_the_unlink_never_ends_beside_a_new_uv"
B2_HANDED = (
    "test_a_root_cleaner_without_ptrace_hands_over_a_file_another_user_opens_as_it_is_removed"
)

#: (name, file, the text, its mutant, the tests that must fail)
MUTANTS: list[tuple[str, str, str, str, list[str]]] = [
    (
        "waiters re-checked while holding ignored (users() skips the lock table)",
        POSIX_REMOVER,
        (
            "            beside.take() if beside is not None\n"
            "            else self.lock_users(tabled) if tabled else {}\n"
        ),
        "            (beside.take() and {}) if beside is not None\n            else {}\n",
        [f"{FINDINGS}::{ROOT_WAITER_TEST}"],
    ),
    (
        # (was `still_used`; on Linux each round now asks `handoffs_in_use`, and `old_in_use`
        # serves tests and the single-handoff API only: see MUTATION.md)
        "old_in_use ignores lock-table entries",
        POSIX_REMOVER,
        "            if mine or unsure:\n                return True\n",
        "            if False:\n                return True\n",
        [f"{KILLS}::test_after_the_unlink_an_entry_on_an_unsure_device_still_counts"],
    ),
    (
        "lock_users drops entries whose device is unsure (the fallback)",
        POSIX_REMOVER,
        "use = self._use_of(mine + unsure)",
        "use = self._use_of(mine)",
        [f"{KILLS}::test_a_waiter_on_a_device_that_cannot_be_told_apart_keeps_the_file"],
    ),
    (
        "old_in_use drops entries whose device is unsure (the fallback)",
        POSIX_REMOVER,
        "            if mine or unsure:\n",
        "            if mine:\n",
        [f"{KILLS}::test_after_the_unlink_an_entry_on_an_unsure_device_still_counts"],
    ),
    (
        "LockTable.entries never returns unsure entries",
        "app/uvsweep/probe/linux.py",
        "return mine, [e for e in on_inode if (e.major, e.minor) != device]",
        "return mine, []",
        [
            f"{KILLS}::test_a_waiter_on_a_device_that_cannot_be_told_apart_keeps_the_file",
            f"{KILLS}::test_after_the_unlink_an_entry_on_an_unsure_device_still_counts",
        ],
    ),
    (
        "still_named always true (now: changed()'s check of the name's inode)",
        POSIX_REMOVER,
        "        if (\n            found.st_ino != target.ino or found.st_dev != target.dev\n",
        (
            "        if False and (\n"
            "            found.st_ino != target.ino or found.st_dev != target.dev\n"
        ),
        [f"{FINDINGS}::test_a_file_renamed_into_place_while_held_is_not_removed"],
    ),
    (
        "O_NOFOLLOW removed",
        "app/uvsweep/probe/posix.py",
        '    | getattr(os, "O_NOFOLLOW", 0)\n',
        "",
        [f"{KILLS}::test_a_symlink_swapped_in_before_the_open_is_never_followed"],
    ),
    (
        "O_NONBLOCK removed",
        "app/uvsweep/probe/posix.py",
        '    | getattr(os, "O_NONBLOCK", 0)\n',
        "",
        [f"{KILLS}::test_a_fifo_swapped_in_before_the_open_never_hangs_the_remover"],
    ),
    # survivors of the first cosmic-ray run, killed by new tests
    (
        "scanner: lock lines of every other device taken for this file's",
        "app/uvsweep/probe/linux.py",
        "mine, unsure = LockTable(self.table).entries(obs.dev, obs.ino, {}, own=False)",
        "unsure, mine = LockTable(self.table).entries(obs.dev, obs.ino, {}, own=False)",
        [f"{KILLS}::test_scan_a_lock_on_another_device_with_our_inode_number_is_not_ours"],
    ),
    (
        "scanner: a same-device entry trusted only with the try-lock's word",
        "app/uvsweep/probe/linux.py",
        "trusted = mine or (unsure if probe is LockProbe.HELD else [])",
        "trusted = mine and (unsure if probe is LockProbe.HELD else [])",
        [f"{KILLS}::test_scan_a_waiter_on_our_device_counts_even_when_the_probe_finds_it_free"],
    ),
    (
        "scanner: an unreadable /proc/locks not caught",
        "app/uvsweep/probe/linux.py",
        "            self.table = read_locks(self.proc)\n        except OSError as err:",
        "            self.table = read_locks(self.proc)\n        except ZeroDivisionError as err:",
        [f"{KILLS}::test_scan_with_an_unreadable_lock_table_says_so_and_still_probes"],
    ),
    (
        "own lock lines: the minor read in base 17",
        "app/uvsweep/probe/linux.py",
        "own.setdefault(int(ino), set()).add((int(major, 16), int(minor, 16)))",
        "own.setdefault(int(ino), set()).add((int(major, 16), int(minor, 17)))",
        ["tests/unit/test_protocol_parts.py"],
    ),
    (
        "odd files: the shared probe's same-file check inverted",
        POSIX_REMOVER,
        "!= (st.st_dev, st.st_ino):\n                return LockProbe.UNREADABLE",
        "== (st.st_dev, st.st_ino):\n                return LockProbe.UNREADABLE",
        [f"{KILLS}::test_a_held_odd_file_the_lock_table_cannot_show_is_held_not_odd"],
    ),
    (
        "batch size: the cap of 2048 files",
        POSIX_REMOVER,
        "BATCH_CAP = 2048",
        "BATCH_CAP = 2049",
        ["tests/unit/test_protocol_parts.py"],
    ),
    (
        "lock lines: reading stops at the first line it cannot read",
        "app/uvsweep/probe/linux.py",
        "        except (IndexError, ValueError):\n            continue\n        table.setdefault",
        "        except (IndexError, ValueError):\n            break\n        table.setdefault",
        ["tests/unit/test_protocol_parts.py"],
    ),
    (
        "scanner: holders looked up in our /proc, not the one given",
        "app/uvsweep/probe/linux.py",
        "super().__init__(processes or ProcessTable(proc=proc))",
        "super().__init__(processes and ProcessTable(proc=proc))",
        [f"{KILLS}::test_scan_describes_holders_from_the_proc_it_was_given"],
    ),
    (
        "a handoff finished in-process reported as a keeper's",
        POSIX_REMOVER,
        "elif keeper_pid is not None and handoff in left:",
        "elif keeper_pid is not None or handoff in left:",
        [f"{KILLS}::test_without_a_keeper_the_cleaner_finishes_the_handoff_and_names_no_keeper"],
    ),
    (
        "macOS open files: the walk stops at our own pid",
        "app/uvsweep/probe/darwin.py",
        "        if pid == exclude:\n            continue\n",
        "        if pid == exclude:\n            break\n",
        [DARWIN_TEST],
    ),
    (
        "fd limit: raised only when already high enough",
        POSIX_REMOVER,
        "and soft < target:",
        "and soft >= target:",
        ["tests/unit/test_protocol_parts.py"],
    ),
    (
        "fd limit: lowered when it is above the target",
        POSIX_REMOVER,
        "if soft != resource.RLIM_INFINITY and soft < target:",
        "if soft != resource.RLIM_INFINITY or soft < target:",
        ["tests/unit/test_protocol_parts.py"],
    ),
    (
        "fd limit: 8193 wanted",
        POSIX_REMOVER,
        "def raise_fd_limit(wanted: int = 8192)",
        "def raise_fd_limit(wanted: int = 8193)",
        ["tests/unit/test_protocol_parts.py"],
    ),
    (
        "errors: a stray prefix on the OS's message",
        POSIX_REMOVER,
        'f"{what}: {message}" if what else message',
        'f"{what}: {message}" if not what else message',
        [f"{KILLS}::test_an_lstat_error_is_reported_with_the_os_message_alone"],
    ),
    (
        "lock lines: reading stops at the first short line (parse_locks)",
        "app/uvsweep/probe/linux.py",
        "        if len(parts) < 6:\n            continue\n        index = 1\n",
        "        if len(parts) < 6:\n            break\n        index = 1\n",
        ["tests/unit/test_protocol_parts.py"],
    ),
    (
        "fd walk: one process counted hidden from the start",
        "app/uvsweep/probe/linux.py",
        "    hidden = 0\n    for pid in pids:",
        "    hidden = 1\n    for pid in pids:",
        [f"{KILLS}::test_root_sees_every_process"],
    ),
    (
        "handoff: a use gone by the first round still counted as a handoff",
        "app/uvsweep/remove/handoff.py",
        "self.released_unused = True\n",
        "self.released_unused = False\n",
        [f"{KILLS}::test_a_use_gone_by_the_handoff_leaves_the_file_removed"],
    ),
    (
        "keeper: its loop ends after one round",
        "app/uvsweep/remove/handoff.py",
        "    stop: Callable[[], bool] = lambda: False,",
        "    stop: Callable[[], bool] = lambda: True,",
        [f"{KILLS}::{KEEPER_TEST}"],
    ),
    (
        "batch: the files after one nobody needed are not reported",
        "app/uvsweep/remove/__init__.py",
        "result.removed.append(target.path)\n                continue\n            result.handoffs",
        "result.removed.append(target.path)\n                break\n            result.handoffs",
        [f"{KILLS}::test_a_use_gone_by_the_handoff_leaves_the_file_removed"],
    ),
    (
        "hidepid policy: the per-dir answer never cached (KeyError)",
        "app/uvsweep/remove/__init__.py",
        "        if directory not in self._private:",
        "        if not directory not in self._private:",
        ["tests/unit/test_protocol_parts.py"],
    ),
    (
        "hidepid policy: private and shared dirs swapped",
        "app/uvsweep/remove/__init__.py",
        "        if self._private[directory]:",
        "        if not self._private[directory]:",
        ["tests/unit/test_protocol_parts.py"],
    ),
    (
        "hidepid policy: no dir is ever private",
        "app/uvsweep/remove/__init__.py",
        "st.st_mode & 0o077 == 0",
        "st.st_mode & 0o077 == -1",
        ["tests/unit/test_protocol_parts.py"],
    ),
    (
        "batch: a refused unlink stops the batch",
        "app/uvsweep/remove/__init__.py",
        "                    continue\n                target.unlinked = True",
        "                    break\n                target.unlinked = True",
        [f"{KILLS}::test_a_file_the_os_refuses_to_remove_does_not_stop_the_batch"],
    ),
    (
        "still_named lets an lstat error through (now: changed()'s, a vanished name)",
        POSIX_REMOVER,
        'except FileNotFoundError:\n            return "replaced while it was being removed"',
        'except KeyError:\n            return "replaced while it was being removed"',
        [f"{KILLS}::test_a_name_removed_while_held_is_kept_as_replaced_not_a_crash"],
    ),
    (
        "keeper: a job it cannot take is a traceback, not a log line",
        "app/uvsweep/remove/handoff.py",
        "except (IndexError, KeyError, TypeError, ValueError, OSError) as err:",
        "except (IndexError, KeyError, TypeError, ValueError) as err:",
        [f"{KILLS}::test_a_keeper_that_cannot_start_says_so_in_its_log_and_exits_2"],
    ),
    (
        "keeper: exit status 3 for a job it cannot take",
        "app/uvsweep/remove/handoff.py",
        '        _log(f"cannot start: {err}")\n        return 2',
        '        _log(f"cannot start: {err}")\n        return 3',
        [f"{KILLS}::test_a_keeper_that_cannot_start_says_so_in_its_log_and_exits_2"],
    ),
    (
        "handoff: the new file made 0667",
        "app/uvsweep/remove/handoff.py",
        "LOCK_FILE_MODE = 0o666",
        "LOCK_FILE_MODE = 0o667",
        [f"{KILLS}::{KEEPER_TEST}"],
    ),
    (
        "keeper start: our copies of the keeper's pipe ends kept (a dead keeper looks alive)",
        "app/uvsweep/remove/handoff.py",
        "                os.close(low)\n            go_r, ready_w = high\n",
        "                pass\n            go_r, ready_w = high\n",
        [f"{KILLS}::test_a_keeper_start_that_fails_leaves_no_fd_of_ours_open"],
    ),
    (
        "keeper: a negative poll interval (the launched keeper)",
        "app/uvsweep/remove/handoff.py",
        'limit=0.1, check=remover.handoffs_in_use)\n    _log(f"done with',
        'limit=-0.9, check=remover.handoffs_in_use)\n    _log(f"done with',
        [f"{KILLS}::{KEEPER_TEST}"],
    ),
    (
        "minimum age: a file exactly that old kept",
        "app/uvsweep/remove/__init__.py",
        "        if age >= self.min_age:",
        "        if age > self.min_age:",
        ["tests/unit/test_protocol_parts.py"],
    ),
    (
        "skip reasons: a waiter alone not named",
        POSIX_REMOVER,
        "who = item.holders or item.waiters or item.openers",
        "who = item.holders or item.waiters and item.openers",
        [f"{KILLS}::test_a_waiter_alone_in_the_table_is_named_in_the_reason"],
    ),
    (
        "lstat: a file with no link left taken for an odd one",
        POSIX_REMOVER,
        "if regular and st.st_nlink == 0:",
        "if regular and st.st_nlink == -1:",
        [f"{KILLS}::test_a_file_unlinked_under_our_eyes_is_gone_not_odd"],
    ),
    (
        "fstat: a file unlinked after our open taken for a changed one",
        POSIX_REMOVER,
        "        if regular and st.st_nlink == 0:",
        "        if regular and st.st_nlink == -1:",
        [f"{KILLS}::test_a_file_unlinked_between_our_open_and_fstat_is_gone_not_odd"],
    ),
    (
        "batch: a file removed by someone else first stops the batch",
        "app/uvsweep/remove/__init__.py",
        "continue  # someone else removed it first",
        "break  # someone else removed it first",
        [f"{KILLS}::test_a_file_another_cleaner_removed_first_does_not_stop_the_batch"],
    ),
    (
        "result: hidden processes start at -1",
        "app/uvsweep/model.py",
        "self.hidden_processes = 0  # processes whose open files",
        "self.hidden_processes = -1  # processes whose open files",
        [f"{KILLS}::test_nothing_to_remove_hides_nothing"],
    ),
    (
        "macOS open files: the walk stops at the first hidden process",
        "app/uvsweep/probe/darwin.py",
        "            hidden += 1\n            continue\n",
        "            hidden += 1\n            break\n",
        [DARWIN_TEST],
    ),
    (
        "fd walk: our own pid taken from the wrong side",
        "app/uvsweep/probe/linux.py",
        "me = calls.getpid() if own_pid is None else own_pid",
        "me = calls.getpid() if own_pid is not None else own_pid",
        ["tests/unit/test_protocol_parts.py"],
    ),
    (
        "fd walk: stops at the first process it may not look at",
        "app/uvsweep/probe/linux.py",
        "                hidden_pids.add(pid)\n            continue\n",
        "                hidden_pids.add(pid)\n            break\n",
        ["tests/unit/test_protocol_parts.py"],
    ),
    (
        "fd walk: stops at the first process gone meanwhile",
        "app/uvsweep/probe/linux.py",
        "continue  # exited meanwhile",
        "break  # exited meanwhile",
        ["tests/unit/test_protocol_parts.py"],
    ),
    (
        "fd walk: a process gone meanwhile is an error",
        "app/uvsweep/probe/linux.py",
        (
            "    except OSError as err:\n"
            "        if err.errno in (errno.ENOENT, errno.ESRCH):\n"
            "            return _GONE"
        ),
        (
            "    except KeyError as err:\n"
            "        if err.errno in (errno.ENOENT, errno.ESRCH):\n"
            "            return _GONE"
        ),
        ["tests/unit/test_protocol_parts.py"],
    ),
    (
        "fd walk: stops at the first fd gone meanwhile",
        "app/uvsweep/probe/linux.py",
        "                    continue  # closed meanwhile",
        "                    break  # closed meanwhile",
        ["tests/unit/test_protocol_parts.py"],
    ),
    (
        "backoff: the clock given ignored",
        "app/uvsweep/remove/__init__.py",
        "clock = calls or _RealClock()",
        "clock = calls and _RealClock()",
        ["tests/unit/test_protocol_parts.py"],
    ),
    (
        "backoff: intervals halved",
        "app/uvsweep/remove/__init__.py",
        "delay = min(limit, delay * 2)",
        "delay = min(limit, delay / 2)",
        ["tests/unit/test_protocol_parts.py"],
    ),
    (
        "keeper log: rotated at every line",
        "app/uvsweep/remove/handoff.py",
        "os.fstat(fd).st_size > 256 * 1024",
        "os.fstat(fd).st_size > 256 / 1024",
        [f"{KILLS}::{KEEPER_TEST}"],
    ),
    (
        "keeper log: never written to a new file",
        "app/uvsweep/remove/handoff.py",
        "if not rotated and os.fstat(fd)",
        "if rotated and os.fstat(fd)",
        [f"{KILLS}::test_a_keeper_that_cannot_start_says_so_in_its_log_and_exits_2"],
    ),
    (
        "hidepid policy: a dir we cannot stat counts as private",
        "app/uvsweep/remove/__init__.py",
        "    except OSError:\n        return False\n    return st.st_uid == os.geteuid()",
        "    except OSError:\n        return True\n    return st.st_uid == os.geteuid()",
        ["tests/unit/test_protocol_parts.py"],
    ),
    (
        "fd limit: the wanted limit returned, not the one set",
        POSIX_REMOVER,
        "return wanted if soft == resource.RLIM_INFINITY else soft",
        "return wanted if soft != resource.RLIM_INFINITY else soft",
        ["tests/unit/test_protocol_parts.py"],
    ),
    (
        "lstat: a vanished file reported as an error",
        POSIX_REMOVER,
        "            st = self.lstat(name, dir_handle)\n        except FileNotFoundError:",
        "            st = self.lstat(name, dir_handle)\n        except KeyError:",
        [f"{KILLS}::test_a_file_gone_after_lstat_is_neither_an_error_nor_a_crash"],
    ),
    (
        "odd files: an open error in the shared probe is a traceback",
        POSIX_REMOVER,
        "OPEN_FLAGS, dir_fd=dir_fd)\n        except OSError:\n            return LockProbe",
        "OPEN_FLAGS, dir_fd=dir_fd)\n        except KeyError:\n            return LockProbe",
        [f"{KILLS}::test_a_file_gone_after_lstat_is_neither_an_error_nor_a_crash"],
    ),
    (
        "keeper: the old file's device read from the wrong field",
        POSIX_REMOVER,
        '(int(item["old_key"][0]), int(item["old_key"][1]))',
        '(int(item["old_key"][-1]), int(item["old_key"][1]))',
        [f"{KILLS}::{KEEPER_TEST}"],
    ),
    (
        "keeper log: never written",
        "app/uvsweep/remove/handoff.py",
        "    if path is None:\n        return\n",
        "    if path is not None:\n        return\n",
        [f"{KILLS}::test_a_keeper_that_cannot_start_says_so_in_its_log_and_exits_2"],
    ),
    (
        "batch size: 23 fds to spare",
        POSIX_REMOVER,
        "FD_RESERVE = 24",
        "FD_RESERVE = 23",
        ["tests/unit/test_protocol_parts.py"],
    ),
    (
        "hidepid policy: others' execute bit ignored",
        "app/uvsweep/remove/__init__.py",
        "st.st_mode & 0o077 == 0",
        "st.st_mode & 0o076 == 0",
        ["tests/unit/test_protocol_parts.py"],
    ),
    (
        "an open refused: the OS's reason dropped",
        "app/uvsweep/system.py",
        "return err.strerror or str(err)",
        "return err.strerror and str(err)",
        [f"{KILLS}::test_a_file_we_may_not_open_says_why"],
    ),
    (
        "keeper start: a keeper that never said ready trusted with the locks",
        "app/uvsweep/remove/handoff.py",
        (
            "            if not chunk:\n"
            "                _kill(pid)\n"
            '                raise OSError(f"{who} did not take over the locks in time")\n'
        ),
        '            if not chunk:\n                return "ready"\n',
        [f"{KILLS}::test_a_keeper_that_never_says_ready_is_killed_and_never_trusted"],
    ),
    (
        "keeper log: rotation fails (a traceback past 256 KiB)",
        "app/uvsweep/remove/handoff.py",
        'os.replace(path, path + ".1")',
        'os.replace(path, path - ".1")',
        [f"{KILLS}::test_a_keeper_that_cannot_start_says_so_in_its_log_and_exits_2"],
    ),
    # ---- survivors of the run on today's protocol ----
    (
        "keeper start: the job names the cleaner's fds, not the keeper's copies",
        "app/uvsweep/remove/handoff.py",
        'for key in ("dir_fd", "old_fd", "new_fd"):',
        "for key in []:",
        [
            f"{KILLS}::test_a_keeper_lets_each_name_go_as_soon_as_its_old_file_is_free",
            f"{KILLS}::{KEEPER_TEST}",
        ],
    ),
    (
        "handoff: the new generation's open follows a symlink at the name",
        "app/uvsweep/remove/handoff.py",
        "os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC",
        "os.O_CREAT | os.O_EXCL & os.O_NOFOLLOW | os.O_CLOEXEC",
        [f"{KILLS}::test_a_symlink_planted_at_the_name_during_a_handoff_is_never_followed"],
    ),
    (
        "rw_accessible: the group's bits read with other's x",
        "app/uvsweep/probe/posix.py",
        "        return mode & 0o060 == 0o060",
        "        return mode & 0o061 == 0o060",
        ["tests/unit/test_protocol_parts.py::test_rw_accessible_ignores_execute_bits"],
    ),
    (
        "fd walk: an fd closed between readlink and stat is a traceback",
        "app/uvsweep/probe/posix.py",
        "        st = stat(stat_path)\n    except OSError:",
        "        st = stat(stat_path)\n    except ValueError:",
        ["tests/unit/test_protocol_parts.py"],
    ),
    (
        "scanner: a file it may not lstat ends the scan",
        "app/uvsweep/probe/posix.py",
        (
            "            except OSError as err:\n"
            '                result.errors.append(ScanError(f"{directory}/{name}"'
        ),
        (
            "            except ValueError as err:\n"
            '                result.errors.append(ScanError(f"{directory}/{name}"'
        ),
        [f"{KILLS}::test_scan_drops_a_file_gone_before_its_lstat"],
    ),
    (
        "rw_accessible: other users' execute bit counted",
        "app/uvsweep/probe/posix.py",
        "    return mode & 0o006 == 0o006",
        "    return mode & 7 == 0o006",
        ["tests/unit/test_protocol_parts.py::test_rw_accessible_ignores_execute_bits"],
    ),
    (
        "scanner: a live temp name's opener missed",
        "app/uvsweep/probe/posix.py",
        "if base.endswith(DELETED) and base not in names:",
        "if base.endswith(DELETED) or base not in names:",
        [f"{KILLS}::test_scan_sees_uv_holding_its_file_under_the_temp_name_it_linked_into_place"],
    ),
    (
        "holder_list: stops at a pid seen before",
        "app/uvsweep/probe/posix.py",
        "        if pid in seen:\n            continue\n",
        "        if pid in seen:\n            break\n",
        [f"{KILLS}::test_holders_are_listed_once_each_in_order"],
    ),
    (
        "scanner: a file gone before its lstat is an error",
        "app/uvsweep/probe/posix.py",
        "follow_symlinks=False)\n        except FileNotFoundError:\n            return None",
        "follow_symlinks=False)\n        except ValueError:\n            return None",
        [f"{KILLS}::test_scan_drops_a_file_gone_before_its_lstat"],
    ),
    (
        "no lock table, not root: the blind spot does not keep the file",
        POSIX_REMOVER,
        "why = why or self._dir_reason(directory)",
        "why = why and self._dir_reason(directory)",
        [
            f"{KILLS}::test_without_the_lock_table_a_cleaner_that_is_not_root_cleans_only_private_dirs"
        ],
    ),
    (
        "scanner probe: an open error's message loses the OS's words",
        "app/uvsweep/system.py",
        "return err.strerror or str(err)",
        "return err.strerror and str(err)",
        [f"{KILLS}::test_the_scanners_probe_gives_the_os_reason_for_a_file_it_cannot_open"],
    ),
    (
        "scanner: a foreign file's owner shown by number though it has a name",
        "app/uvsweep/processes.py",
        "self._names[uid] = user_name(uid) or str(uid)",
        "self._names[uid] = user_name(uid) and str(uid)",
        [f"{KILLS}::test_scan_names_the_owner_of_another_users_file"],
    ),
    (
        "handoff: a dir that refuses a new file is a traceback",
        "app/uvsweep/remove/handoff.py",
        "        except OSError:\n            return None  # the dir refuses",
        "        except ValueError:\n            return None  # the dir refuses",
        [f"{KILLS}::test_a_handoff_rides_out_a_round_it_cannot_read_and_a_name_it_cannot_open"],
    ),
    (
        "keeper: started in the cleaner's session",
        "app/uvsweep/remove/handoff.py",
        "start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,",
        "start_new_session=False, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,",
        [f"{KILLS}::{KEEPER_TEST}"],
    ),
    (
        "a held file's holder from an unsure lock line not named",
        POSIX_REMOVER,
        "        return self._use_of(mine + unsure)\n",
        "        return self._use_of(mine)\n",
        [f"{KILLS}::test_a_held_file_whose_lock_line_has_an_unknown_device_names_its_holder"],
    ),
    (
        "signal handlers not given back after a batch",
        "app/uvsweep/remove/__init__.py",
        "for restored, handler in previous.items():",
        "for restored, handler in []:",
        [f"{KILLS}::test_the_signal_handlers_are_given_back_after_each_batch"],
    ),
    (
        "keeper log: its file made readable by others",
        "app/uvsweep/remove/handoff.py",
        "fd = os.open(path, flags, 0o600)",
        "fd = os.open(path, flags, 0o601)",
        [f"{KILLS}::test_the_keeper_never_logs_into_a_dir_another_user_owns"],
    ),
    (
        "handoff: a round whose check fails ends the run with a traceback",
        "app/uvsweep/remove/handoff.py",
        "        except Exception:  # noqa: BLE001 - unknown is not",
        "        except ValueError:  # noqa: BLE001 - unknown is not",
        [f"{KILLS}::test_a_handoff_rides_out_a_round_it_cannot_read_and_a_name_it_cannot_open"],
    ),
    (
        "handoff: a name that refuses to open (a symlink) is a traceback",
        "app/uvsweep/remove/handoff.py",
        "# a new uv's\n            except OSError:",
        "# a new uv's\n            except ValueError:",
        [f"{KILLS}::test_a_handoff_rides_out_a_round_it_cannot_read_and_a_name_it_cannot_open"],
    ),
    (
        "keeper: the new file's fd lost (closed only when the keeper exits)",
        POSIX_REMOVER,
        'handoff.new_fd = None if item["new_fd"] is None else int(item["new_fd"])',
        'handoff.new_fd = None if item["new_fd"] is not None else int(item["new_fd"])',
        [f"{KILLS}::test_a_keeper_lets_each_name_go_as_soon_as_its_old_file_is_free"],
    ),
    (
        "keeper: SIGINT and SIGHUP not ignored",
        "app/uvsweep/remove/handoff.py",
        'for name in ("SIGINT", "SIGHUP", "SIGPIPE"):',
        "for name in []:",
        [f"{KILLS}::{KEEPER_TEST}"],
    ),
    (
        "keeper log: its dir made for others to enter",
        "app/uvsweep/remove/handoff.py",
        "os.makedirs(directory, mode=0o700, exist_ok=True)",
        "os.makedirs(directory, mode=0o701, exist_ok=True)",
        [f"{KILLS}::test_the_keeper_never_logs_into_a_dir_another_user_owns"],
    ),
    (
        "fd walk: a same-named file in another dir counts",
        "app/uvsweep/probe/linux.py",
        "if key is not None and key in wanted:",
        "if key is not None or key in wanted:",
        [f"{KILLS}::test_a_file_of_the_same_name_open_in_another_dir_is_not_ours"],
    ),
    (
        "own lock lines: parsing stops at an unreadable one",
        "app/uvsweep/probe/linux.py",
        "                    continue\n        return self._own",
        "                    break\n        return self._own",
        ["tests/unit/test_protocol_parts.py::test_our_own_lock_lines_give_their_device_in_hex"],
    ),
    (
        "a foreign file's owner shown by number though it has a name",
        "app/uvsweep/processes.py",
        "self._names[uid] = user_name(uid) or str(uid)",
        "self._names[uid] = user_name(uid) and str(uid)",
        [f"{KILLS}::test_another_users_file_is_kept_and_its_owner_named"],
    ),
    (
        "no lock table, not root: shared dirs cleaned, private ones kept",
        POSIX_REMOVER,
        "        if dir_is_private(directory):\n            return None\n        return (",
        "        if not dir_is_private(directory):\n            return None\n        return (",
        [
            f"{KILLS}::test_without_the_lock_table_a_cleaner_that_is_not_root_cleans_only_private_dirs"
        ],
    ),
    (
        "lock table: read once by a cleaner that is not root, twice by root",
        POSIX_REMOVER,
        "reads=1 if self.euid == 0 else 2",
        "reads=1 if self.euid != 0 else 2",
        [f"{KILLS}::test_a_cleaner_that_is_not_root_reads_the_lock_table_twice"],
    ),
    (
        "keeper start: a launcher that printed no pid is a traceback",
        "app/uvsweep/remove/handoff.py",
        '    except (IndexError, ValueError):\n        raise OSError(f"the keeper did not start',
        '    except (ValueError,):\n        raise OSError(f"the keeper did not start',
        [f"{KILLS}::test_a_launcher_that_cannot_fork_the_keeper_is_a_clear_error"],
    ),
    (
        "a default SIGTERM is not held back while locks are held",
        "app/uvsweep/remove/__init__.py",
        "if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:",
        "if signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:",
        [f"{KILLS}::test_sigterm_while_locks_are_held_waits_for_the_batch_then_exits_143"],
    ),
    (
        "keeper log: written into a dir another user owns",
        "app/uvsweep/remove/handoff.py",
        "if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():",
        "if not stat.S_ISDIR(st.st_mode) and st.st_uid != os.geteuid():",
        [f"{KILLS}::test_the_keeper_never_logs_into_a_dir_another_user_owns"],
    ),
    (
        "no keeper: the wait given up at once (`seen - 1`)",
        POSIX_REMOVER,
        "len(self.interrupts) > seen + 1,",
        "len(self.interrupts) > seen - 1,",
        [f"{KILLS}::test_without_a_keeper_one_interrupt_only_says_why_and_the_handoff_goes_on"],
    ),
    (
        "no keeper: the first Ctrl-C gives the wait up (`seen + 0`)",
        POSIX_REMOVER,
        "len(self.interrupts) > seen + 1,",
        "len(self.interrupts) > seen + 0,",
        [f"{KILLS}::test_without_a_keeper_one_interrupt_only_says_why_and_the_handoff_goes_on"],
    ),
    (
        "no keeper: two Ctrl-C do not give the wait up (`seen + 2`)",
        POSIX_REMOVER,
        "len(self.interrupts) > seen + 1,",
        "len(self.interrupts) > seen + 2,",
        [
            f"{KILLS}::test_without_a_keeper_two_more_interrupts_give_the_handoff_up_and_close_its_files"
        ],
    ),
    (
        "handoff: a hidden pid 1 seen on the old inode is not followed",
        POSIX_REMOVER,
        "{e.pid for e in entries if e.pid > 0}",
        "{e.pid for e in entries if e.pid > 1}",
        [f"{KILLS}::test_a_hidden_process_seen_on_the_old_inode_is_followed_pid_1_included"],
    ),
    (
        "handoff: only hidden pids <= 0 are followed",
        POSIX_REMOVER,
        "{e.pid for e in entries if e.pid > 0}",
        "{e.pid for e in entries if e.pid <= 0}",
        [f"{KILLS}::test_a_hidden_process_seen_on_the_old_inode_is_followed_pid_1_included"],
    ),
    (
        "re-check: an fstat error's message loses the OS's reason",
        "app/uvsweep/system.py",
        "return err.strerror or str(err)",
        "return err.strerror and str(err)",
        [f"{KILLS}::test_a_file_that_cannot_be_checked_again_is_kept_with_the_os_reason"],
    ),
    (
        "re-check: an lstat error is a traceback",
        POSIX_REMOVER,
        '        except OSError as err:\n            return f"cannot be checked again',
        '        except ValueError as err:\n            return f"cannot be checked again',
        [f"{KILLS}::test_a_file_that_cannot_be_checked_again_is_kept_with_the_os_reason"],
    ),
    (
        "listing: the dir fd leaks when the listing fails",
        POSIX_REMOVER,
        "if lock_name(name)]  # fmt: skip\n        except OSError:",
        "if lock_name(name)]  # fmt: skip\n        except ValueError:",
        [f"{KILLS}::test_a_dir_that_cannot_be_listed_is_an_error_and_its_fd_is_closed"],
    ),
    (
        "request_stop alone does not stop a removal's wait",
        "app/uvsweep/remove/__init__.py",
        "return bool(self.interrupts or self.stop_requests)",
        "return bool(self.interrupts and self.stop_requests)",
        [f"{KILLS}::test_request_stop_hands_a_long_handoff_to_a_keeper_at_once"],
    ),
    (
        "no keeper: a given-up handoff keeps its files open and says nothing",
        POSIX_REMOVER,
        '        for handoff in left:\n            if handoff.state != "done":',
        '        for handoff in []:\n            if handoff.state != "done":',
        [
            f"{KILLS}::test_without_a_keeper_two_more_interrupts_give_the_handoff_up_and_close_its_files"
        ],
    ),
    # run 3 (cleaner.py, probe/posix.py, the code changed since be75988, processes.py)
    (
        "cleaner: a blind dry run's skip reason made empty (or -> and)",
        "app/uvsweep/cleaner.py",
        "report.skip(item.path, item.state, why or report.blind)",
        "report.skip(item.path, item.state, why and report.blind)",
        [
            f"{CLEANER_KILLS}::test_a_dry_run_that_cannot_see_every_namespace_keeps_each_file_and_says_why"
        ],
    ),
    (
        "cleaner: a report starts with one hidden process",
        "app/uvsweep/model.py",
        "self.hidden_processes = 0  # processes whose open files",
        "self.hidden_processes = 1  # processes whose open files",
        [
            f"{CLEANER_KILLS}::test_a_run_that_removes_nothing_because_it_is_blind_counts_no_hidden_processes"
        ],
    ),
    (
        "cleaner: hidepid's private-dirs rule applied the wrong way round",
        "app/uvsweep/cleaner.py",
        "elif not seen.sees_all_users:",
        "elif seen.sees_all_users:",
        [f"{CLEANER_KILLS}::test_under_hidepid_only_files_in_dirs_no_one_else_may_enter_go"],
    ),
    (
        "cleaner: a report starts with one handoff",
        "app/uvsweep/model.py",
        "self.handoffs = 0  # files a process grabbed",
        "self.handoffs = 1  # files a process grabbed",
        [
            f"{CLEANER_KILLS}::test_a_run_that_removes_nothing_because_it_is_blind_counts_no_hidden_processes"
        ],
    ),
    (
        "cleaner: a dry run takes foreign files for its own (is -> is not)",
        "app/uvsweep/cleaner.py",
        "mine=item.state is LockState.ORPHANED",
        "mine=item.state is not LockState.ORPHANED",
        [
            f"{CLEANER_KILLS}::test_a_dry_run_names_what_the_real_run_removes_and_other_users_files_only_with_all_users"
        ],
    ),
    (
        "policy: another user's file taken without all users (and -> or; the dry run's rule)",
        "app/uvsweep/remove/__init__.py",
        "return mine or (self.all_users and privileged)",
        "return mine or (self.all_users or privileged)",
        [
            f"{CLEANER_KILLS}::test_a_dry_run_names_what_the_real_run_removes_and_other_users_files_only_with_all_users"
        ],
    ),
    (
        "cleaner: clean takes every user's files by default",
        "app/uvsweep/cleaner.py",
        "    all_users: bool = False,\n    dry_run",
        "    all_users: bool = True,\n    dry_run",
        [
            f"{CLEANER_KILLS}::test_a_dry_run_names_what_the_real_run_removes_and_other_users_files_only_with_all_users"
        ],
    ),
    (
        "cleaner: the process table given is replaced (or -> and)",
        "app/uvsweep/cleaner.py",
        "processes = processes or ProcessTable()",
        "processes = processes and ProcessTable()",
        [f"{CLEANER_KILLS}::test_clean_asks_the_process_table_it_is_given"],
    ),
    (
        "probe: a dir's listing error escapes the scan (except OSError narrowed)",
        "app/uvsweep/probe/posix.py",
        "names.extend(uv_names(fd))\n                    except OSError as err:",
        "names.extend(uv_names(fd))\n                    except ZeroDivisionError as err:",
        [
            f"{KILLS}::test_a_dir_whose_listing_fails_after_its_open_is_an_error_and_the_scan_goes_on"
        ],
    ),
    (
        "probe: a POSIX dir with a backslash taken for a Windows dir (and -> or)",
        "app/uvsweep/probe/__init__.py",
        'sep = "\\\\" if "\\\\" in directory and "/" not in directory else "/"',
        'sep = "\\\\" if "\\\\" in directory or "/" not in directory else "/"',
        [f"{KILLS}::test_a_posix_dir_with_a_backslash_in_its_name_gives_its_files_slash_paths"],
    ),
    (
        "probe: a relative POSIX dir taken for a Windows dir (not added)",
        "app/uvsweep/probe/__init__.py",
        'sep = "\\\\" if "\\\\" in directory and "/" not in directory else "/"',
        'sep = "\\\\" if not "\\\\" in directory and "/" not in directory else "/"',
        [f"{KILLS}::test_a_relative_dir_gives_its_files_slash_paths"],
    ),
    (
        "probe: probe_files looks at no dir (loop run zero times)",
        "app/uvsweep/probe/posix.py",
        "for directory, names in by_dir.items():",
        "for directory, names in []:",
        [f"{KILLS}::test_probing_named_files_looks_at_those_files_only"],
    ),
    (
        "probe: probe_files stops at a dir it cannot open (continue -> break)",
        "app/uvsweep/probe/posix.py",
        (
            "result.errors.append(ScanError(directory, system.dir_reason(err)))\n"
            "                continue\n"
        ),
        (
            "result.errors.append(ScanError(directory, system.dir_reason(err)))\n"
            "                break\n"
        ),
        [f"{KILLS}::test_probing_named_files_looks_at_those_files_only"],
    ),
    (
        "probe: LOCK_SH is LOCK_EX (the remover's shared probe made exclusive)",
        "app/uvsweep/probe/posix.py",
        "LOCK_SH, LOCK_EX, LOCK_NB, LOCK_UN = 1, 2, 4, 8",
        "LOCK_SH, LOCK_EX, LOCK_NB, LOCK_UN = 2, 2, 4, 8",
        [f"{KILLS}::test_the_removers_probe_of_a_file_it_keeps_is_shared"],
    ),
    (
        "probe: try_lock's flock error reason (or -> and)",
        "app/uvsweep/system.py",
        "return err.strerror or str(err)",
        "return err.strerror and str(err)",
        [f"{KILLS}::test_the_scanners_probe_gives_the_os_reason_for_a_lock_it_cannot_try"],
    ),
    (
        "probe: rw_accessible's owner bits 0o600 -> 0o601",
        "app/uvsweep/probe/posix.py",
        "        return mode & 0o600 == 0o600",
        "        return mode & 0o601 == 0o600",
        ["tests/unit/test_protocol_parts.py::test_rw_accessible_ignores_execute_bits"],
    ),
    (
        "probe: observe opens what is not regular, or quietly what no lock line names (and -> or)",
        "app/uvsweep/probe/posix.py",
        "if stat.S_ISREG(st.st_mode) and self.probe_needed(st):",
        "if stat.S_ISREG(st.st_mode) or self.probe_needed(st):",
        [
            f"{KILLS}::test_the_scanner_opens_only_regular_files_and_quietly_none_without_a_lock_line"
        ],
    ),
    (
        "probe: a dir's error's last reason (or -> and; now system.reason)",
        "app/uvsweep/system.py",
        "return err.strerror or str(err)",
        "return err.strerror and str(err)",
        [f"{KILLS}::test_a_dir_that_cannot_be_opened_for_another_reason_says_so_in_the_os_words"],
    ),
    (
        "probe: classify takes a keeper that has a free file open for its holder (is -> is not)",
        "app/uvsweep/probe/__init__.py",
        "held = bool(holders) or obs.lock is LockProbe.HELD",
        "held = bool(holders) or obs.lock is not LockProbe.HELD",
        [f"{KILLS}::test_a_keeper_that_has_a_file_open_without_its_lock_does_not_make_it_held"],
    ),
    (
        "probe: a scan stops at an entry it cannot look at (continue -> break)",
        "app/uvsweep/probe/posix.py",
        'ScanError(f"{directory}/{name}", str(err)))\n                continue',
        'ScanError(f"{directory}/{name}", str(err)))\n                break',
        [f"{KILLS}::test_a_scan_goes_on_past_an_entry_it_cannot_look_at"],
    ),
    (
        "probe: uv_names' stream keeps the names that are not uv's (not added)",
        "app/uvsweep/probe/posix.py",
        'if entry.name.startswith("uv-"):',
        'if not entry.name.startswith("uv-"):',
        [f"{KILLS}::test_a_dir_read_as_a_stream_gives_the_names_a_listing_at_once_gives"],
    ),
    (
        "probe: uv_names' stream reads nothing (loop run zero times)",
        "app/uvsweep/probe/posix.py",
        "for entry in entries:",
        "for entry in []:",
        [f"{KILLS}::test_a_dir_read_as_a_stream_gives_the_names_a_listing_at_once_gives"],
    ),
    (
        "probe: probe_files lets a dir's open error escape (except OSError narrowed)",
        "app/uvsweep/probe/posix.py",
        (
            "                dir_fd = os.open(directory, DIR_FLAGS)\n"
            "            except OSError as err:"
        ),
        (
            "                dir_fd = os.open(directory, DIR_FLAGS)\n"
            "            except KeyError as err:"
        ),
        [f"{KILLS}::test_probing_named_files_looks_at_those_files_only"],
    ),
    (
        "probe: probe_files groups no file (loop run zero times)",
        "app/uvsweep/probe/posix.py",
        "for directory, name in files:\n            by_dir",
        "for directory, name in []:\n            by_dir",
        [f"{KILLS}::test_probing_named_files_looks_at_those_files_only"],
    ),
    (
        "linux: LockTable.unseen ignores an incomplete read (not removed)",
        "app/uvsweep/probe/linux.py",
        "return not self.complete and not self.shows(dev, ino, known)",
        "return self.complete and not self.shows(dev, ino, known)",
        [f"{KILLS}::test_a_lock_table_that_never_shows_our_own_lock_keeps_the_file"],
    ),
    (
        "remove: a lock table that failed after a good read counts as nobody waiting (not added)",
        POSIX_REMOVER,
        "            if self._table_ever_read:",
        "            if not self._table_ever_read:",
        [f"{KILLS}::test_a_lock_table_that_fails_after_it_was_read_leaves_old_files_in_use"],
    ),
    (
        "remove: confirm_in_use keeps old files locked when its check is cut short",
        POSIX_REMOVER,
        "        except BaseException:\n            used |= set(locked)",
        "        except ValueError:\n            used |= set(locked)",
        [f"{KILLS}::test_a_check_cut_short_never_leaves_an_old_file_locked_by_us"],
    ),
    (
        "remove: the lock table's anchors never satisfied (<= -> <)",
        "app/uvsweep/probe/linux.py",
        "if wanted <= table.own_keys and",
        "if wanted < table.own_keys and",
        [f"{KILLS}::test_the_lock_table_is_read_until_our_own_records_show_and_no_longer"],
    ),
    (
        "remove: handoffs_in_use asks unseen() about the wrong file (device and inode swapped)",
        POSIX_REMOVER,
        "if holding and table.unseen(*handoff.old_key, self.known):",
        "if holding and table.unseen(*handoff.old_key[::-1], self.known):",
        [
            f"{KILLS}::test_an_incomplete_lock_table_holds_back_only_the_handoffs_whose_record_is_missing"
        ],
    ),
    (
        "remove: confirm_in_use stops at a handoff not in NEW (continue -> break)",
        POSIX_REMOVER,
        "            if handoff.state != NEW or handoff.old_fd is None:\n                continue",
        "            if handoff.state != NEW or handoff.old_fd is None:\n                break",
        [f"{KILLS}::test_each_handoff_whose_old_file_someone_holds_is_confirmed_in_use"],
    ),
    (
        "remove: confirm_in_use stops at the first held old file (continue -> break)",
        POSIX_REMOVER,
        "(or refused: the safe side)\n                continue",
        "(or refused: the safe side)\n                break",
        [f"{KILLS}::test_each_handoff_whose_old_file_someone_holds_is_confirmed_in_use"],
    ),
    (
        "remove: confirm_in_use's try-lock error escapes (except OSError narrowed)",
        POSIX_REMOVER,
        "            except OSError:\n                used.add(handoff)  # held by someone",
        "            except KeyError:\n                used.add(handoff)  # held by someone",
        [f"{KILLS}::test_each_handoff_whose_old_file_someone_holds_is_confirmed_in_use"],
    ),
    (
        "remove: handoffs_in_use's unseen() only for handoffs not holding (not added)",
        POSIX_REMOVER,
        "if holding and table.unseen(*handoff.old_key, self.known):",
        "if not holding and table.unseen(*handoff.old_key, self.known):",
        [
            f"{KILLS}::test_an_incomplete_lock_table_holds_back_only_the_handoffs_whose_record_is_missing"
        ],
    ),
    (
        "remove: waiting_behind_us asks unseen() about the wrong file (device and inode swapped)",
        POSIX_REMOVER,
        "if mine or unsure or table.unseen(*handoff.old_key, self.known):",
        "if mine or unsure or table.unseen(*handoff.old_key[::-1], self.known):",
        [
            f"{KILLS}::test_an_incomplete_lock_table_holds_back_only_the_handoffs_whose_record_is_missing"
        ],
    ),
    (
        "remove: handoffs_in_use anchors the handoffs not holding their old file (== -> !=)",
        POSIX_REMOVER,
        "table = self._read_table(h.old_key for h in handoffs if h.state == OLD)",
        "table = self._read_table(h.old_key for h in handoffs if h.state != OLD)",
        [
            f"{KILLS}::test_a_handoff_still_holding_its_old_file_reads_the_table_until_its_record_shows"
        ],
    ),
    (
        "remove: _table_ever_read never set (or -> and)",
        POSIX_REMOVER,
        "self._table_ever_read = self._table_ever_read or table is not None",
        "self._table_ever_read = self._table_ever_read and table is not None",
        [f"{KILLS}::test_a_lock_table_that_fails_after_it_was_read_leaves_old_files_in_use"],
    ),
    (
        "remove: handoffs_in_use takes the handoffs not in OLD for those holding (== -> !=)",
        POSIX_REMOVER,
        "holding = handoff.state == OLD",
        "holding = handoff.state != OLD",
        [
            f"{KILLS}::test_an_incomplete_lock_table_holds_back_only_the_handoffs_whose_record_is_missing"
        ],
    ),
    (
        "remove: _table_ever_read set by a failed read (is not -> is)",
        POSIX_REMOVER,
        "self._table_ever_read = self._table_ever_read or table is not None",
        "self._table_ever_read = self._table_ever_read or table is None",
        [f"{KILLS}::test_a_lock_table_that_fails_after_it_was_read_leaves_old_files_in_use"],
    ),
    (
        "remove: confirm_in_use try-locks a handoff still in OLD (or -> and)",
        POSIX_REMOVER,
        "if handoff.state != NEW or handoff.old_fd is None:",
        "if handoff.state != NEW and handoff.old_fd is None:",
        [
            f"{KILLS}::test_a_handoff_still_holding_its_old_file_is_never_confirmed_and_keeps_its_lock"
        ],
    ),
    (
        "lock lines: reading stops at the first short line (parse_lock_table)",
        "app/uvsweep/probe/linux.py",
        '        if len(parts) < 6:\n            continue\n        if parts[1] != "->":\n',
        '        if len(parts) < 6:\n            break\n        if parts[1] != "->":\n',
        [f"{PARTS}::test_the_removers_lock_table_skips_a_line_it_cannot_read_and_reads_the_rest"],
    ),
    (
        "keeper: a negative poll interval (the forked keeper)",
        "app/uvsweep/remove/handoff.py",
        "limit=0.1, check=remover.handoffs_in_use)\n            except Exception as err:",
        "limit=-0.9, check=remover.handoffs_in_use)\n            except Exception as err:",
        [f"{KILLS}::test_a_forked_keeper_polls_its_rounds_without_failing_them"],
    ),
    # run 4's survivors, killed by new tests
    (
        "processes: a process's name keeps its opening parenthesis (left + 1 -> + 0)",
        PROCESSES,
        'return raw[left + 1 : right].decode("utf-8", "replace")',
        'return raw[left + 0 : right].decode("utf-8", "replace")',
        [f"{PHASE}::test_uv_by_its_name_alone_or_its_argv0_alone"],
    ),
    (
        "processes: argv[0] taken from the second word ([0] -> [1])",
        PROCESSES,
        'argv0 = raw.split(b"\\0", 1)[0]',
        'argv0 = raw.split(b"\\0", 1)[1]',
        [f"{PHASE}::test_uv_by_its_name_alone_or_its_argv0_alone"],
    ),
    (
        "processes: cache_lock_pids stops at a lock with no pid (continue -> break)",
        PROCESSES,
        "            if pid <= 0 or pid in skip:\n                continue\n",
        "            if pid <= 0 or pid in skip:\n                break\n",
        [f"{PHASE}::test_a_cache_lock_after_one_with_no_pid_still_counts"],
    ),
    (
        "processes: a short stat line is a traceback (except narrowed)",
        PROCESSES,
        "    except (IndexError, ValueError):\n        return None\n\n\ndef _linux_info",
        "    except (ValueError,):\n        return None\n\n\ndef _linux_info",
        [f"{PHASE}::test_a_stat_line_too_short_to_read_is_no_process_and_no_crash"],
    ),
    (
        "processes: off Linux, a pid that is gone is alive (return False -> True)",
        PROCESSES,
        "STATUS_ZOMBIE\n        except psutil.Error:\n            return False\n",
        "STATUS_ZOMBIE\n        except psutil.Error:\n            return True\n",
        ["tests/unit/test_psutil_double.py::test_a_process_that_is_gone_is_not_alive"],
    ),
    (
        "processes: a pid whose stat is gone is a traceback (or -> and)",
        PROCESSES,
        'if stat is None or stat[2] in ("Z", "X", "K"):',
        'if stat is None and stat[2] in ("Z", "X", "K"):',
        [f"{PHASE}::test_a_stat_line_too_short_to_read_is_no_process_and_no_crash"],
    ),
    (
        "keeper: a forked keeper without pipes says ready on fd -1 (>= 0 -> >= -1)",
        "app/uvsweep/remove/handoff.py",
        "                if ready_fd >= 0 and not said:\n                    _say_ready(",
        "                if ready_fd >= -1 and not said:\n                    _say_ready(",
        [f"{KILLS}::test_a_forked_keeper_polls_its_rounds_without_failing_them"],
    ),
    (
        "processes: a short lock line is a traceback (except narrowed)",
        PROCESSES,
        'rsplit(":", 1)[1])\n        except (IndexError, ValueError):',
        'rsplit(":", 1)[1])\n        except (ValueError,):',
        [f"{PHASE}::test_a_lock_line_too_short_to_read_is_skipped_and_the_rest_read"],
    ),
    (
        "keeper: the forked keeper stays the cleaner's child (_second_fork's != -> ==)",
        "app/uvsweep/remove/handoff.py",
        "    if pid != 0:\n        os._exit(0)\n",
        "    if pid == 0:\n        os._exit(0)\n",
        [f"{KILLS}::test_a_forked_keeper_is_nobodys_child"],
    ),
    (
        "keeper: fork's parent runs the child's part (pid == 0 -> != 0)",
        "app/uvsweep/remove/handoff.py",
        "        if pid == 0:  # the child",
        "        if pid != 0:  # the child",
        [f"{KILLS}::test_a_forked_keeper_is_nobodys_child"],
    ),
    (
        "keeper: a failed fork leaks the keeper's pipes (loop run zero times)",
        "app/uvsweep/remove/handoff.py",
        "            for fd in pipes:\n                os.close(fd)\n            raise\n",
        "            for fd in []:\n                os.close(fd)\n            raise\n",
        [f"{KILLS}::test_a_fork_that_fails_leaves_no_pipe_of_ours_open"],
    ),
    (
        "processes: -m uv of any program (and -> or)",
        PROCESSES,
        "return info is not None and is_uv_process(info)",
        "return info is not None or is_uv_process(info)",
        [f"{PHASE}::test_uv_by_its_name_alone_or_its_argv0_alone"],
    ),
    (
        "processes: a waiter's arrow left in place (del parts[1] -> [2])",
        PROCESSES,
        "            del parts[1]\n",
        "            del parts[2]\n",
        [f"{PHASE}::test_a_cache_lock_after_one_with_no_pid_still_counts"],
    ),
    (
        "processes: any word names the next one a cache dir (and -> or)",
        PROCESSES,
        'if word == "--cache-dir" and index + 1 < len(argv):',
        'if word == "--cache-dir" or index + 1 < len(argv):',
        [f"{PHASE}::test_a_cache_lock_after_one_with_no_pid_still_counts"],
    ),
    (
        "processes: a one-word lock line is a traceback (> 1 -> >= 1)",
        PROCESSES,
        'waiting = len(parts) > 1 and parts[1] == "->"',
        'waiting = len(parts) >= 1 and parts[1] == "->"',
        [f"{PHASE}::test_a_lock_line_too_short_to_read_is_skipped_and_the_rest_read"],
    ),
    (
        "processes: POSIX locks taken for uv's (or -> and)",
        PROCESSES,
        'if len(parts) < 2 or parts[1] != "FLOCK":',
        'if len(parts) < 2 and parts[1] != "FLOCK":',
        [f"{PHASE}::test_a_lock_line_too_short_to_read_is_skipped_and_the_rest_read"],
    ),
    (
        "processes: alive for a zombie or a pid that is gone (and -> or)",
        PROCESSES,
        'return found is not None and found[2] not in ("Z", "X")',
        'return found is not None or found[2] not in ("Z", "X")',
        [f"{PHASE}::test_alive_is_neither_a_zombie_nor_a_pid_that_is_gone"],
    ),
    (
        "processes: a /proc file that fails to read is a traceback (except narrowed)",
        PROCESSES,
        '        return b"".join(chunks)\n    except OSError:',
        '        return b"".join(chunks)\n    except KeyError:',
        [f"{PHASE}::test_a_process_file_that_opens_but_cannot_be_read_is_unknown"],
    ),
    (
        "processes: a start time in ticks times the tick rate (/ -> *)",
        PROCESSES,
        'found[1] / os.sysconf("SC_CLK_TCK")',
        'found[1] * os.sysconf("SC_CLK_TCK")',
        [f"{PHASE}::test_a_process_started_when_its_stat_says"],
    ),
    (
        "processes: a start time from the wrong stat field (fields[19] -> [18])",
        PROCESSES,
        "int(fields[19])",
        "int(fields[18])",
        [f"{PHASE}::test_a_process_started_when_its_stat_says"],
    ),
    (
        "processes: is_uv_process: a process named uv is not uv (True -> False)",
        PROCESSES,
        "    if info.name and is_uv_name(info.name):\n        return True\n",
        "    if info.name and is_uv_name(info.name):\n        return False\n",
        [f"{PHASE}::test_is_uv_process_by_its_name_or_its_argv0"],
    ),
    (
        "processes: is_uv_process: argv[1] taken for argv[0]",
        PROCESSES,
        "is_uv_name(uvphase.basename(info.cmdline[0]))",
        "is_uv_name(uvphase.basename(info.cmdline[1]))",
        [f"{PHASE}::test_is_uv_process_by_its_name_or_its_argv0"],
    ),
    (
        "processes: the holder of a pid that is gone is alive (False -> True)",
        PROCESSES,
        "LockUser(pid=pid, alive=False)",
        "LockUser(pid=pid, alive=True)",
        [f"{PHASE}::test_the_holder_of_a_pid_that_is_gone_says_it_exited"],
    ),
    (
        "keeper: the forked keeper's first copy never reaped (keeper == pid inverted)",
        "app/uvsweep/remove/handoff.py",
        "                if keeper == pid:\n",
        "                if not keeper == pid:\n",
        [f"{KILLS}::test_a_forked_keeper_is_nobodys_child"],
    ),
    (
        "keeper: without pipes, the forked keeper's ready fd is 0 (-1 -> 0)",
        "app/uvsweep/remove/handoff.py",
        "ready_r, ready_w, go_r, go_w = pipes or (-1, -1, -1, -1)",
        "ready_r, ready_w, go_r, go_w = pipes or (-1, 0, -1, -1)",
        [f"{KILLS}::test_a_forked_keeper_polls_its_rounds_without_failing_them"],
    ),
    (
        "processes: _linux_stat: a short stat line is a traceback (except narrowed)",
        PROCESSES,
        "    except (IndexError, ValueError):\n        return None\n\n\n_BOOT_TIMES",
        "    except (ValueError,):\n        return None\n\n\n_BOOT_TIMES",
        [f"{PHASE}::test_a_stat_line_too_short_to_read_is_no_process_and_no_crash"],
    ),
    (
        "processes: a hidden working dir drops the absolute cache dirs (not removed)",
        PROCESSES,
        "(not os.path.isabs(directory) and not cwd)",
        "(os.path.isabs(directory) and not cwd)",
        [f"{PHASE}::test_a_cache_lock_after_one_with_no_pid_still_counts"],
    ),
    (
        "keeper: a cleaner gone before it heard ready ends the keeper (except narrowed)",
        "app/uvsweep/remove/handoff.py",
        '    except OSError:\n        _log("the cleaner was gone before it heard ready',
        '    except KeyError:\n        _log("the cleaner was gone before it heard ready',
        [f"{KILLS}::test_a_forked_keeper_whose_cleaner_died_before_hearing_ready_keeps_the_files"],
    ),
    (
        "processes: _linux_stat: a stat field that is no number is a traceback",
        PROCESSES,
        "    except (IndexError, ValueError):\n        return None\n\n\n_BOOT_TIMES",
        "    except (IndexError,):\n        return None\n\n\n_BOOT_TIMES",
        [f"{PHASE}::test_a_stat_line_too_short_to_read_is_no_process_and_no_crash"],
    ),
    (
        "processes: $XDG_CACHE_HOME/uv never a cache dir (loop run zero times)",
        PROCESSES,
        'for xdg in (env.get("XDG_CACHE_HOME"), os.environ.get("XDG_CACHE_HOME")):',
        "for xdg in []:",
        [f"{PHASE}::test_a_cache_lock_after_one_with_no_pid_still_counts"],
    ),
    (
        "processes: off Linux, environ inverted (is not None -> not ... is not None)",
        PROCESSES,
        "return dict(found) if found is not None else None",
        "return dict(found) if not found is not None else None",
        [
            "tests/unit/test_psutil_double.py::test_a_process_environment_off_linux_or_none_when_denied"
        ],
    ),
    (
        "processes: uv as pid 1 never found by its cache lock (<= 0 -> <= 1)",
        PROCESSES,
        "if pid <= 0 or pid in skip:",
        "if pid <= 1 or pid in skip:",
        [f"{PHASE}::test_a_cache_lock_after_one_with_no_pid_still_counts"],
    ),
    (
        "processes: --cache-dir=DIR read from the wrong part ([1] -> [2])",
        PROCESSES,
        'dirs.append(word.split("=", 1)[1])',
        'dirs.append(word.split("=", 1)[2])',
        [f"{PHASE}::test_a_cache_lock_after_one_with_no_pid_still_counts"],
    ),
    (
        "processes: the home of a pid that is gone (and -> or)",
        PROCESSES,
        "if info is not None and info.uid is not None:",
        "if info is not None or info.uid is not None:",
        [f"{PHASE}::test_a_cache_lock_after_one_with_no_pid_still_counts"],
    ),
    (
        "processes: a uid with no passwd entry is a traceback (except narrowed)",
        PROCESSES,
        ".pw_dir)\n        except (ImportError, KeyError):",
        ".pw_dir)\n        except (ImportError,):",
        [f"{PHASE}::test_a_lock_holder_whose_uid_has_no_name_is_no_traceback"],
    ),
    (
        "processes: --cache-dir=DIR cut at a second = (split 1 -> 2)",
        PROCESSES,
        'dirs.append(word.split("=", 1)[1])',
        'dirs.append(word.split("=", 2)[1])',
        [f"{PHASE}::test_a_cache_lock_after_one_with_no_pid_still_counts"],
    ),
    (
        "processes: --cache-dir as the last word is a traceback (+ 1 -> + 0)",
        PROCESSES,
        'if word == "--cache-dir" and index + 1 < len(argv):',
        'if word == "--cache-dir" and index + 0 < len(argv):',
        [f"{PHASE}::test_a_cache_lock_after_one_with_no_pid_still_counts"],
    ),
    (
        "processes: no boot time is a traceback (and -> or)",
        PROCESSES,
        "if found and boot is not None:",
        "if found or boot is not None:",
        [f"{PHASE}::test_no_boot_time_means_no_start_time"],
    ),
    (
        "processes: a kernel thread, a zombie or a gone pid named uv (False -> True)",
        PROCESSES,
        '"X", "K"):\n                return False\n',
        '"X", "K"):\n                return True\n',
        [f"{PHASE}::test_a_kernel_thread_is_never_uv"],
    ),
    (
        "processes: OwnerNames gives the number though there is a login (or -> and)",
        PROCESSES,
        "user_name(uid) or str(uid)",
        "user_name(uid) and str(uid)",
        [f"{PHASE}::test_a_file_owner_is_named_by_login_and_by_number_without_one"],
    ),
    (
        "keeper: a forked keeper that said ready forgets it (said = True -> False)",
        "app/uvsweep/remove/handoff.py",
        "                    said = True\n",
        "                    said = False\n",
        [f"{KILLS}::test_a_forked_keeper_whose_round_fails_after_go_keeps_the_files"],
    ),
    (
        "processes: --cache-dir DIR as the last two words skipped (+ 1 -> + 2)",
        PROCESSES,
        'if word == "--cache-dir" and index + 1 < len(argv):',
        'if word == "--cache-dir" and index + 2 < len(argv):',
        [f"{PHASE}::test_a_cache_lock_after_one_with_no_pid_still_counts"],
    ),
    (
        "processes: the parent read from the wrong stat field (fields[1] -> [2])",
        PROCESSES,
        "return int(fields[1]), int(fields[19])",
        "return int(fields[2]), int(fields[19])",
        [f"{PHASE}::test_a_process_parent_and_ancestors_from_its_stat"],
    ),
    (
        "processes: a pid we cannot see named as exited (or -> and)",
        PROCESSES,
        "if not pid or pid < 0:",
        "if not pid and pid < 0:",
        [f"{PHASE}::test_the_holder_of_a_pid_that_is_gone_says_it_exited"],
    ),
    (
        "processes: an empty cache dir taken for the working dir (or -> and)",
        PROCESSES,
        "if not directory or (not os.path.isabs(directory) and not cwd):",
        "if not directory and (not os.path.isabs(directory) and not cwd):",
        [f"{PHASE}::test_a_cache_lock_after_one_with_no_pid_still_counts"],
    ),
    (
        "keeper: a keeper gone before GO is a bare broken pipe (except narrowed)",
        "app/uvsweep/remove/handoff.py",
        "        _write_all(go_w, GO)\n    except OSError as err:",
        "        _write_all(go_w, GO)\n    except KeyError as err:",
        [f"{KILLS}::test_a_keeper_gone_between_ready_and_go_is_said_in_plain_words"],
    ),
    (
        "keeper: a forked keeper says ready at every round (and -> or)",
        "app/uvsweep/remove/handoff.py",
        "                if ready_fd >= 0 and not said:\n                    _say_ready(",
        "                if ready_fd >= 0 or not said:\n                    _say_ready(",
        [f"{KILLS}::test_a_forked_keeper_polls_its_rounds_without_failing_them"],
    ),
    (
        "keeper start: the keeper's low pipe ends never closed (loop run zero times)",
        "app/uvsweep/remove/handoff.py",
        "            for low in (go_r, ready_w):",
        "            for low in []:",
        [f"{KILLS}::test_a_keeper_that_dies_at_once_is_not_waited_for_whatever_the_jobs_size"],
    ),
    (
        "processes: --cache-dir as the last word is a traceback (+ 1 -> - 1)",
        PROCESSES,
        'if word == "--cache-dir" and index + 1 < len(argv):',
        'if word == "--cache-dir" and index - 1 < len(argv):',
        [f"{PHASE}::test_a_cache_lock_after_one_with_no_pid_still_counts"],
    ),
    (
        "processes: no home dir's cache looked at (loop run zero times)",
        PROCESSES,
        'for home in [*homes, os.path.expanduser("~")]:',
        "for home in []:",
        [f"{PHASE}::test_a_cache_lock_after_one_with_no_pid_still_counts"],
    ),
    (
        "processes: the state letter read from the ppid (fields[0] -> [1])",
        PROCESSES,
        "else chr(fields[0][0])",
        "else chr(fields[1][0])",
        [f"{PHASE}::test_a_zombie_child_does_not_park_its_uv"],
    ),
    (
        "processes: the passwd home only for an unknown uid (is not None -> is None)",
        PROCESSES,
        "if info is not None and info.uid is not None:",
        "if info is not None and info.uid is None:",
        [f"{PHASE}::test_a_hidden_uvs_cache_is_looked_for_in_its_users_home"],
    ),
    (
        "processes: the state letter read from the last stat field (fields[0] -> [-1])",
        PROCESSES,
        "else chr(fields[0][0])",
        "else chr(fields[-1][0])",
        [f"{PHASE}::test_a_zombie_child_does_not_park_its_uv"],
    ),
    (
        "keeper: a failed second pipe leaks the first (loop run zero times)",
        "app/uvsweep/remove/handoff.py",
        "        for fd in pipes:\n            os.close(fd)\n        return []\n",
        "        for fd in []:\n            os.close(fd)\n        return []\n",
        [f"{PARTS}::test_no_fds_for_a_second_pipe_leaves_none_of_the_first_open"],
    ),
    (
        "keeper: _max_fd's cap of 2**20 made 0 (1 << 20 -> 0 << 20)",
        "app/uvsweep/remove/handoff.py",
        "return soft if 0 < soft < 1 << 20 else 1 << 20",
        "return soft if 0 < soft < 1 << 20 else 0 << 20",
        [f"{PARTS}::test_the_forked_keeper_closes_fds_up_to_the_soft_limit_or_a_million"],
    ),
    (
        "processes: off Linux, a gone pid's error escapes alive (except psutil.Error narrowed)",
        PROCESSES,
        "STATUS_ZOMBIE\n        except psutil.Error:\n            return False\n",
        "STATUS_ZOMBIE\n        except KeyError:\n            return False\n",
        ["tests/unit/test_psutil_double.py::test_a_process_that_is_gone_is_not_alive"],
    ),
    (
        "keeper: the forked keeper's stdout left closed ((0, 1, 2) -> (0, 0, 2))",
        "app/uvsweep/remove/handoff.py",
        "        for fd in (0, 1, 2):\n",
        "        for fd in (0, 0, 2):\n",
        [f"{KILLS}::test_a_forked_keeper_is_nobodys_child"],
    ),
    (
        "keeper: the fd after each kept one left open in a forked keeper (+ 1 -> + 2)",
        "app/uvsweep/remove/handoff.py",
        "        start = fd + 1\n",
        "        start = fd + 2\n",
        [f"{PARTS}::test_a_forked_keeper_keeps_only_its_fds_and_ignores_the_signals_of_a_session"],
    ),
    (
        "keeper: a forked keeper keeps the cleaner's signal handlers (loop run zero times)",
        "app/uvsweep/remove/handoff.py",
        'for name in ("SIGINT", "SIGHUP", "SIGPIPE", "SIGTSTP"):',
        "for name in []:",
        [f"{PARTS}::test_a_forked_keeper_keeps_only_its_fds_and_ignores_the_signals_of_a_session"],
    ),
    (
        "keeper: the first copy of a forked keeper asked once, not waited for (0 -> WNOHANG)",
        "app/uvsweep/remove/handoff.py",
        "                        os.waitpid(pid, 0)\n",
        "                        os.waitpid(pid, 1)\n",
        [f"{KILLS}::test_a_forked_keeper_is_nobodys_child"],
    ),
    (
        "keeper: reap_forked drops a keeper that still runs (== 0 -> == 1)",
        "app/uvsweep/remove/handoff.py",
        "if os.waitpid(pid, os.WNOHANG)[0] == 0:",
        "if os.waitpid(pid, os.WNOHANG)[0] == 1:",
        [f"{KILLS}::test_a_forked_keeper_polls_its_rounds_without_failing_them"],
    ),
    (
        "keeper: _max_fd's cap of 2**20 taken as 2**21 (1 << 20 -> 1 << 21)",
        "app/uvsweep/remove/handoff.py",
        "return soft if 0 < soft < 1 << 20 else 1 << 20",
        "return soft if 0 < soft < 1 << 21 else 1 << 20",
        [f"{PARTS}::test_the_forked_keeper_closes_fds_up_to_the_soft_limit_or_a_million"],
    ),
    (
        "keeper: no memfd (macOS) is an AttributeError (except narrowed)",
        "app/uvsweep/remove/handoff.py",
        "    except (AttributeError, OSError):\n        import tempfile\n",
        "    except (OSError,):\n        import tempfile\n",
        [f"{PARTS}::test_the_keepers_job_goes_in_a_temp_file_where_there_is_no_memfd"],
    ),
    (
        "keeper: a forked keeper's failure leaves unlogged (except BaseException narrowed)",
        "app/uvsweep/remove/handoff.py",
        "    except BaseException as err:  # noqa: BLE001",
        "    except KeyError as err:  # noqa: BLE001",
        [f"{KILLS}::test_a_forked_keeper_that_cannot_start_says_why_in_its_log"],
    ),
    # run 5
    (
        "keeper: a second fork that fails leaves no keeper (_second_fork's pid = 0 -> 1)",
        "app/uvsweep/remove/handoff.py",
        "    except OSError:  # no second copy: this one is the keeper\n        pid = 0\n",
        "    except OSError:  # no second copy: this one is the keeper\n        pid = 1\n",
        [f"{KILLS}::test_a_fork_that_fails_in_the_keepers_copy_only_leaves_that_copy_the_keeper"],
    ),
    (
        "keeper: a second fork's failure returns into the cleaner's code (except narrowed)",
        "app/uvsweep/remove/handoff.py",
        "    except OSError:  # no second copy: this one is the keeper\n",
        "    except KeyError:  # no second copy: this one is the keeper\n",
        [f"{KILLS}::test_a_fork_that_fails_in_the_keepers_copy_only_leaves_that_copy_the_keeper"],
    ),
    (
        "keeper: the launcher run with check=True (its failure said as a command line)",
        "app/uvsweep/remove/handoff.py",
        "stderr=subprocess.DEVNULL, check=False, timeout=30,",
        "stderr=subprocess.DEVNULL, check=True, timeout=30,",
        [f"{KILLS}::test_a_launcher_that_cannot_fork_the_keeper_is_a_clear_error"],
    ),
    (
        "keeper: /dev/null closed when it is fd 2 (null > 2 -> null > 1)",
        "app/uvsweep/remove/handoff.py",
        "        if null > 2:\n",
        "        if null > 1:\n",
        [f"{KILLS}::test_a_forked_keeper_keeps_a_handoffs_file_that_was_opened_as_stdio"],
    ),
    (
        "keeper: a job that cannot be written leaks its fd (_job_file's except narrowed)",
        "app/uvsweep/remove/handoff.py",
        "        os.lseek(fd, 0, os.SEEK_SET)\n    except OSError:\n",
        "        os.lseek(fd, 0, os.SEEK_SET)\n    except KeyError:\n",
        [f"{PARTS}::test_a_keepers_job_that_cannot_be_written_leaves_no_fd_open"],
    ),
    (
        "handoff: a replaced file that cannot be fstat'ed ends the round (except narrowed)",
        "app/uvsweep/remove/handoff.py",
        "[key], [self.replaced[0]])\n        except Exception:  # noqa",
        "[key], [self.replaced[0]])\n        except KeyError:  # noqa",
        [f"{KILLS}::{NEXT_IN_LINE_TEST}"],
    ),
    (
        "handoff: the warning's time there, free (now - since -> now + since)",
        "app/uvsweep/remove/handoff.py",
        "{now - self.foreign_since:.0f} s{links}",
        "{now + self.foreign_since:.0f} s{links}",
        [f"{KILLS}::test_roots_file_at_the_name_is_taken_at_once_by_a_cleaner_that_is_not_root"],
    ),
    (
        "handoff: the warning gives a link count for one link (nlink != 1 -> != 0)",
        "app/uvsweep/remove/handoff.py",
        'links" if found.st_nlink != 1 else ""',
        'links" if found.st_nlink != 0 else ""',
        [f"{KILLS}::test_roots_file_at_the_name_is_taken_at_once_by_a_cleaner_that_is_not_root"],
    ),
    (
        "remover: progress that raises stops a removal after its unlink (except narrowed)",
        "app/uvsweep/remove/__init__.py",
        "        except Exception:  # noqa: BLE001 - progress is never worth a lock\n",
        "        except KeyError:  # noqa: BLE001 - progress is never worth a lock\n",
        [f"{KILLS}::{PROGRESS_TEST}"],
    ),
    (
        "keeper: reap_forked stops at a keeper that still runs (continue -> break)",
        "app/uvsweep/remove/handoff.py",
        "            if os.waitpid(pid, os.WNOHANG)[0] == 0:\n                continue\n",
        "            if os.waitpid(pid, os.WNOHANG)[0] == 0:\n                break\n",
        [f"{KILLS}::test_a_keeper_still_running_never_keeps_the_next_ones_from_being_reaped"],
    ),
    (
        "keeper: a launcher that hangs is no OSError (except SubprocessError narrowed)",
        "app/uvsweep/remove/handoff.py",
        "    except subprocess.SubprocessError as err:  # the launcher hung: no keeper\n",
        "    except subprocess.CalledProcessError as err:  # the launcher hung: no keeper\n",
        [f"{KILLS}::test_a_launcher_that_hangs_is_a_clear_error"],
    ),
    (
        "handoff: an unused old file's fd left open (_drop_old(close=True) -> False)",
        "app/uvsweep/remove/handoff.py",
        "    def _drop_old(self, close: bool = True) -> None:",
        "    def _drop_old(self, close: bool = False) -> None:",
        [f"{KILLS}::test_a_handoff_whose_old_file_nobody_uses_closes_its_fd"],
    ),
    (
        "keeper: /dev/null put over a kept fd 0-2 (_become_keeper's and -> or)",
        "app/uvsweep/remove/handoff.py",
        "            if fd != null and fd not in keep:",
        "            if fd != null or fd not in keep:",
        [f"{KILLS}::test_a_forked_keeper_keeps_a_handoffs_file_that_was_opened_as_stdio"],
    ),
    (
        "handoff: the next in line's identity read from the newest replaced ([0] -> [-1])",
        "app/uvsweep/remove/handoff.py",
        "            st = self.calls.fstat(self.replaced[0])\n",
        "            st = self.calls.fstat(self.replaced[-1])\n",
        [f"{KILLS}::{NEXT_IN_LINE_TEST}"],
    ),
    (
        "handoff: the old file done with left open by _next_in_line (is not None -> is None)",
        "app/uvsweep/remove/handoff.py",
        "        if self.old_fd is not None:\n            with contextlib.suppress(OSError):\n"
        + CLOSE_OLD,
        "        if self.old_fd is None:\n            with contextlib.suppress(OSError):\n"
        + CLOSE_OLD,
        [f"{KILLS}::{NEXT_IN_LINE_TEST}"],
    ),
    (
        "handoff: root's file at the name waits out the patience ((0, euid) -> (1, euid))",
        "app/uvsweep/remove/handoff.py",
        "if owner in (0, self.calls.geteuid()):",
        "if owner in (1, self.calls.geteuid()):",
        [f"{KILLS}::test_roots_file_at_the_name_is_taken_at_once_by_a_cleaner_that_is_not_root"],
    ),
    (
        "handoff: a warning that raises escapes the handoff (_say's except narrowed)",
        "app/uvsweep/remove/handoff.py",
        "        except Exception:  # noqa: BLE001 - a warning lost; the log may still have it\n",
        "        except KeyError:  # noqa: BLE001 - a warning lost; the log may still have it\n",
        [f"{NEXT_GENERATION_ATTACKS}::{WARNING_TEST}"],
    ),
    (
        "processes: uv's fork known by its argv alone no more (_judged's or -> and)",
        PROCESSES,
        "forked = child_argv == argv or (own_exe is not None and",
        "forked = child_argv == argv and (own_exe is not None and",
        [f"{PHASE}::test_a_child_is_uvs_own_fork_by_its_command_line_or_by_its_executable"],
    ),
    (
        "processes: uv's fork known by its executable no more (own_exe is not None -> is None)",
        PROCESSES,
        "forked = child_argv == argv or (own_exe is not None and",
        "forked = child_argv == argv or (own_exe is None and",
        [f"{PHASE}::test_a_child_is_uvs_own_fork_by_its_command_line_or_by_its_executable"],
    ),
    (
        "processes: a uv without a readable argv taken for a launcher (else False -> True)",
        PROCESSES,
        "            if argv\n            else False\n",
        "            if argv\n            else True\n",
        [f"{PHASE}::test_a_uv_whose_command_line_cannot_be_read_is_no_launcher"],
    ),
    (
        "processes: any stat flag below PF_KTHREAD taken for it (0x00200000 -> 0x001fffff)",
        PROCESSES,
        "_PF_KTHREAD = 0x00200000",
        "_PF_KTHREAD = 0x001FFFFF",
        [f"{PHASE}::test_a_process_with_the_flags_of_roots_processes_is_no_kernel_thread"],
    ),
    (
        "processes: off Linux, a gone pid's parent a traceback (parent's except narrowed)",
        PROCESSES,
        "            return psutil.Process(pid).ppid()\n        except psutil.Error:\n",
        "            return psutil.Process(pid).ppid()\n        except psutil.AccessDenied:\n",
        [f"{PSUTIL}::test_a_process_that_is_gone_has_no_parent_children_executable_or_environment"],
    ),
    (
        "processes: off Linux, a gone pid's children a traceback (children's except narrowed)",
        PROCESSES,
        "psutil.Process(pid).children()]\n            except psutil.Error:\n",
        "psutil.Process(pid).children()]\n            except psutil.AccessDenied:\n",
        [f"{PSUTIL}::test_a_process_that_is_gone_has_no_parent_children_executable_or_environment"],
    ),
    (
        "processes: off Linux, a gone pid's exe a traceback (_psutil_call's except narrowed)",
        PROCESSES,
        "            self.denied.add(pid)\n            return None\n        except psutil.Error:\n",
        "            self.denied.add(pid)\n            return None\n        except KeyError:\n",
        [f"{PSUTIL}::test_a_process_that_is_gone_has_no_parent_children_executable_or_environment"],
    ),
    (
        "handoff: the next in line taken from the newest replaced (pop(0) -> pop(-1); run 5d)",
        "app/uvsweep/remove/handoff.py",
        "self.old_fd, self.followed = self.replaced.pop(0), self.seen.pop(key, set())",
        "self.old_fd, self.followed = self.replaced.pop(-1), self.seen.pop(key, set())",
        [f"{KILLS}::{NEXT_IN_LINE_TEST}"],
    ),
    (
        "handoff run: the wait between two steps (- began -> + began; run 5d, Q5)",
        "app/uvsweep/remove/handoff.py",
        "calls.monotonic() - began >= wait",
        "calls.monotonic() + began >= wait",
        ["tests/unit/test_handoff_run.py::test_one_round_steps_every_handoff_while_there_is_time"],
    ),
    (
        "handoff run: a stop between two steps goes on stepping (break -> continue; run 5d, Q5)",
        "app/uvsweep/remove/handoff.py",
        "                left.extend(pending[index:])\n                break\n",
        "                left.extend(pending[index:])\n                continue\n",
        [
            (
                "tests/unit/test_handoff_run.py"
                "::test_a_stop_between_two_steps_leaves_the_rest_as_they_were_and_unfinished"
            )
        ],
    ),
    (
        "replaced_in_use: one hidden process is not enough (hidden > 0 -> > 1; run 5d, Q1)",
        POSIX_REMOVER,
        "        blind = self.euid != 0 or hidden > 0\n        by_key",
        "        blind = self.euid != 0 or hidden > 1\n        by_key",
        [
            (
                "tests/unit/test_handoff_replaced.py"
                "::test_one_process_whose_fds_cannot_be_seen_keeps_a_replaced_file_it_has_open"
            )
        ],
    ),
    (
        "handoff: a lost name said once a handoff, not once a loss (name_lost after a re-take)",
        "app/uvsweep/remove/handoff.py",
        "        self.name_lost = False\n        self.retakes += 1\n",
        "        self.name_lost = True\n        self.retakes += 1\n",
        [
            (
                "tests/unit/test_handoff_replaced.py"
                "::test_the_name_lost_again_after_a_retake_is_said_again"
            )
        ],
    ),
    (
        "handoff: the name's lstat failing ends the round (_keep_the_name's except narrowed)",
        "app/uvsweep/remove/handoff.py",
        "        except OSError:\n            return  # unknown: keep what we hold",
        "        except KeyError:\n            return  # unknown: keep what we hold",
        [
            (
                "tests/unit/test_handoff_replaced.py"
                "::test_a_name_that_cannot_be_looked_at_leaves_the_handoff_as_it_was"
            )
        ],
    ),
    (
        "replaced_in_use: a waiter whose pid is 1 not seen (not followed in its file's turn)",
        POSIX_REMOVER,
        "update(e.pid for e in mine + unsure if e.pid > 0)",
        "update(e.pid for e in mine + unsure if e.pid > 1)",
        [
            (
                "tests/redteam/test_p2_review.py"
                "::test_a_waiter_seen_on_a_replaced_file_is_followed_in_its_turn_even_as_pid_1"
            )
        ],
    ),
    # run 6: parse_lock_table's shortcut for our own flocks, by hand (the focused operator set
    # makes no mutant of a regex, an `in` or a call)
    (
        "parse shortcut: the lines left to the loop are the marked ones (its filter inverted)",
        LINUX_PROBE,
        "rest = [line for line in lines if mark not in line]",
        "rest = [line for line in lines if mark in line]",
        [LOCK_TABLE_PARSE],
    ),
    (
        "parse shortcut: its keys found anywhere in a line (the regex's leading newline dropped)",
        LINUX_PROBE,
        'return re.compile(r"\\n\\d+: FLOCK',
        'return re.compile(r"\\d+: FLOCK',
        [LOCK_TABLE_PARSE],
    ),
    (
        "parse shortcut: an empty key taken for ours (the regex's key \\S+ -> \\S*)",
        LINUX_PROBE,
        'pid + r" (\\S+)")',
        'pid + r" (\\S*)")',
        [LOCK_TABLE_PARSE],
    ),
    (
        "parse shortcut: taken whether or not every marked line matched",
        LINUX_PROBE,
        "if len(keys) + len(rest) == len(lines):",
        "if True:",
        [LOCK_TABLE_PARSE],
    ),
    (
        "parse shortcut: the keys it found never said ours",
        LINUX_PROBE,
        "            own.update(keys)\n",
        "            pass\n",
        [LOCK_TABLE_PARSE],
    ),
    (
        "listing: every name of the dir listed, not only uv's lock names (its filter dropped)",
        POSIX_REMOVER,
        "                     if lock_name(name)]  # fmt: skip",
        "                     if name]  # fmt: skip",
        ["tests/integration/test_clean_protocol.py::test_removes_orphans_and_nothing_else"],
    ),
    (
        "listing: the names in the order the file system lists them (the sort dropped)",
        POSIX_REMOVER,
        "        names.sort()\n",
        "",
        [
            (
                f"{KILLS}::test_a_dirs_files_are_taken_and_reported_in_name_order"
                "_whatever_order_it_lists"
            )
        ],
    ),
    (
        "waiting_behind_us: a waiter whose pid is 1 not followed (e.pid > 0 -> > 1; run 6)",
        POSIX_REMOVER,
        "handoff.followed |= {e.pid for e in mine + unsure if e.pid > 0}",
        "handoff.followed |= {e.pid for e in mine + unsure if e.pid > 1}",
        [
            (
                "tests/redteam/test_p2_review.py::test_the_old_files_waiter_seen_behind_our"
                "_confirming_lock_is_followed_even_as_pid_1"
            )
        ],
    ),
    (
        "old_in_use: a walk that fails raises instead of 'in use' (except OSError narrowed)",
        POSIX_REMOVER,
        (
            "except OSError:  # some process's open files could not be listed: unknown, so"
            " in use\n            return True\n"
        ),
        (
            "except KeyError:  # some process's open files could not be listed: unknown, so"
            " in use\n            return True\n"
        ),
        [f"{KILLS}::test_an_old_file_whose_openers_fds_cannot_be_listed_for_want_of_fds_is_in_use"],
    ),
    (
        "open_users: a walk that fails names pid 1 as the opener ([0] -> [1])",
        POSIX_REMOVER,
        "return {target: [0] for target in targets}",
        "return {target: [1] for target in targets}",
        [f"{KILLS}::test_a_file_kept_because_the_fd_walk_failed_names_no_process"],
    ),
    (
        "pre_lock_use: our own locks say which device a file we do not hold is on (own=True)",
        POSIX_REMOVER,
        "mine, _unsure = self._batch_table().entries(dev, ino, self.known, own=False)",
        "mine, _unsure = self._batch_table().entries(dev, ino, self.known, own=True)",
        [
            (
                f"{FINDINGS}::test_a_waiter_on_another_tmpfs_file_we_hold_with_the_same_inode"
                "_number_is_not_this_files"
            )
        ],
    ),
    (
        "changed: a hard link made while held goes unchecked (st_nlink != 1 -> != 2)",
        POSIX_REMOVER,
        "if found.st_size or found.st_nlink != 1 or found.st_uid != target.uid",
        "if found.st_size or found.st_nlink != 2 or found.st_uid != target.uid",
        [f"{FINDINGS}::test_a_file_hard_linked_while_held_is_never_removed"],
    ),
    (
        "open_users: a walk that fails raises out of the batch (except OSError narrowed)",
        POSIX_REMOVER,
        "except OSError:  # some process's open files could not be listed: any could be open",
        "except KeyError:  # some process's open files could not be listed: any could be open",
        [f"{KILLS}::test_a_file_kept_because_the_fd_walk_failed_names_no_process"],
    ),
    (
        "handoffs_in_use: a holder in the table unlocks even an OLD handoff (and any -> or any)",
        POSIX_REMOVER,
        "                and any(not e.waiting for e in entries)\n",
        "                or any(not e.waiting for e in entries)\n",
        [f"{KILLS}::test_a_handoff_still_holding_its_old_file_keeps_its_lock_beside_a_posix_lock"],
    ),
    (
        "old_in_use: a walk that fails says 'nobody' (return True -> False)",
        POSIX_REMOVER,
        "unknown, so in use\n            return True\n        return bool(found)",
        "unknown, so in use\n            return False\n        return bool(found)",
        [f"{KILLS}::test_an_old_file_whose_openers_fds_cannot_be_listed_for_want_of_fds_is_in_use"],
    ),
    (
        "busy_use: our own locks say which device a file we could not lock is on (own=True)",
        POSIX_REMOVER,
        "mine, unsure = self._batch_table().entries(dev, ino, self.known, own=False)",
        "mine, unsure = self._batch_table().entries(dev, ino, self.known, own=True)",
        [
            (
                f"{FINDINGS}::test_a_waiter_on_another_tmpfs_file_we_hold_with_the_same_inode"
                "_number_is_not_this_files"
            )
        ],
    ),
    (
        "fd walk: stops at a process whose threads hide (run 6b)",
        "app/uvsweep/probe/linux.py",
        "hidden_pids.add(pid)\n            continue\n        for fd in fds:",
        "hidden_pids.add(pid)\n            break\n        for fd in fds:",
        [
            "tests/unit/test_walk_threads.py::test_the_walk_goes_on_past_a_process_whose_threads_hide"
        ],
    ),
    (
        # run 6 C finished: the session's kill was a test's own timeout (`suspects.py`); applied
        # by hand, these fail by their assertions (an unused old file in use; two holders)
        "handoffs_in_use: an opener of the old file ignored, nobody taken for a user (not added)",
        POSIX_REMOVER,
        "            if found.get(handoff.old_key) or alone is False:\n",
        "            if not found.get(handoff.old_key) or alone is False:\n",
        [
            (
                f"{KILLS}::test_an_incomplete_lock_table_holds_back_only_the_handoffs_whose"
                "_record_is_missing"
            ),
            f"{FINDINGS}::test_a_waiter_and_a_preempted_opener_never_hold_two_generations",
        ],
    ),
    (
        "privileged: root is not (run 6 C; == 1 and == -1 alike)",
        POSIX_REMOVER,
        '"""See `Remover`: root."""\n        return self.euid == 0',
        '"""See `Remover`: root."""\n        return self.euid != 0',
        [
            (
                f"{CLEANER_KILLS}::test_a_dry_run_names_what_the_real_run_removes_and_other"
                "_users_files_only_with_all_users"
            )
        ],
    ),
    (
        "B2: a refused link hides nothing (errno not in _REFUSED -> in)",
        LINUX_PROBE,
        "                if err.errno not in _REFUSED:",
        "                if err.errno in _REFUSED:",
        ["tests/unit/test_walk_threads.py", f"{B2_TESTS}::{B2_KEPT}"],
    ),
    (
        "B2: a process whose links are refused counted once a link (break -> continue)",
        LINUX_PROBE,
        "                    hidden_pids.add(pid)\n                break\n",
        "                    hidden_pids.add(pid)\n                continue\n",
        ["tests/unit/test_walk_threads.py"],
    ),
    (
        "B2: no lease asked after the unlink (open_users)",
        POSIX_REMOVER,
        "            if said is False:\n                opened[target] = [0]",
        "            if said is None:\n                opened[target] = [0]",
        # (since M6's fix the file is still handed over, by `let_go`: a refused lease reads as
        # a broken one; `open_users` itself must say the file is open)
        ["tests/unit/test_alone_retries.py", f"{B2_TESTS}::{B2_KEPT}", f"{B2_TESTS}::{B2_HANDED}"],
    ),
    (
        "B2: the lease asked before the unlink only (open_users)",
        POSIX_REMOVER,
        "asked = [t for t in targets if t.unlinked and t not in opened]",
        "asked = [t for t in targets if not t.unlinked and t not in opened]",
        [f"{B2_TESTS}::{B2_KEPT}", f"{B2_TESTS}::{B2_HANDED}"],
    ),
    (
        "L2: root without CAP_LEASE never takes the lease as the file's owner",
        "app/uvsweep/probe/posix.py",
        "            return self._alone_as_owner(fd, keep) if err.errno == errno.EACCES else None",
        "            return None",
        [
            f"{B2_TESTS_REVIEW}::test_root_in_docker_never_removes_another_users_file_its_uv_has_open",
            "tests/unit/test_alone.py",
        ],
    ),
    (
        "L2: the fsuid left at the file's owner after the lease",
        "app/uvsweep/probe/posix.py",
        "        finally:\n            setfsuid(before)",
        "        finally:\n            pass",
        ["tests/unit/test_alone.py"],
    ),
    (
        "SIGIO: the lease's own SIGURG skipped though SIGIO was never ignored",
        "app/uvsweep/probe/posix.py",
        "            if not _SIGIO_IGNORED:\n",
        "            if _SIGIO_IGNORED:\n",
        ["tests/unit/test_alone.py"],
    ),
    (
        "SIGIO: ignore_lease_breaks leaves SIGIO at its default (and says it ignores it)",
        "app/uvsweep/probe/posix.py",
        "            signal.signal(signal.SIGIO, signal.SIG_IGN)\n",
        "            pass\n",
        ["tests/unit/test_alone.py"],
    ),
    (
        "L4: a refused lease never asked again (a probe's description let go meanwhile)",
        POSIX_REMOVER,
        "            if said is not False:\n                break",
        "            if said is not None:\n                break",
        ["tests/unit/test_alone_retries.py"],
    ),
    (
        "B2: a lease refused in a handoff's round not taken for use",
        POSIX_REMOVER,
        "            if found.get(handoff.old_key) or alone is False:\n",
        "            if found.get(handoff.old_key) or alone is None:\n",
        [f"{B2_TESTS}::{B2_HANDED}"],
    ),
    (
        "B2: a followed pid waited for until it exits though the lease answers (liveness)",
        POSIX_REMOVER,
        "            elif handoff.followed and alone is None:\n",
        "            elif handoff.followed:\n",
        [
            (
                "tests/sim/test_blind_walk.py"
                "::test_a_followed_uv_that_comes_back_for_the_name_is_not_waited_for_until_it_exits"
            )
        ],
    ),
    (
        "L5: files the lease could not be asked about not counted",
        POSIX_REMOVER,
        "            elif said is None:\n                self.unasked += 1",
        "            elif said is None:\n                self.unasked += 0",
        [f"{B2_TESTS_REVIEW}::test_clean_says_when_the_kernel_could_not_be_asked"],
    ),
    (
        "B2: a replaced file whose lease cannot be asked taken for unused (None -> alone)",
        POSIX_REMOVER,
        "            if said is False or (said is None and blind):",
        "            if said is False or (said is None and not blind):",
        [
            (
                "tests/unit/test_handoff_replaced.py"
                "::test_one_process_whose_fds_cannot_be_seen_keeps_a_replaced_file_it_has_open"
            )
        ],
    ),
    (
        "alone: a lease refused for another opener (EAGAIN) taken for cannot-tell",
        "app/uvsweep/probe/posix.py",
        "return False if err.errno in (errno.EAGAIN, errno.EWOULDBLOCK) else None",
        "return None if err.errno in (errno.EAGAIN, errno.EWOULDBLOCK) else None",
        ["tests/unit/test_alone.py", f"{B2_TESTS}::{B2_KEPT}"],
    ),
    (
        "alone: the lease's signal left SIGIO (F_SETSIG dropped), which ends the process",
        "app/uvsweep/probe/posix.py",
        "            fcntl(fd, set_sig, sigurg)\n",
        "",
        ["tests/unit/test_alone.py"],
    ),
    (
        "alone: the lease kept, never given back (F_UNLCK dropped)",
        "app/uvsweep/probe/posix.py",
        "unlck)\n        return True\n\n    def lease_broken",
        "unlck) if False else None\n        return True\n\n    def lease_broken",
        ["tests/unit/test_alone.py"],
    ),
    (
        "lease first: a lease that cannot be asked taken for a granted one (users_after_unlink)",
        POSIX_REMOVER,
        "            if said is not True:\n                self._lease_said[target] = said",
        "            if said is False:\n                self._lease_said[target] = said",
        [SEEING_WITHOUT_LEASES, ONE_WALK],
    ),
    (
        "lease first: a refused lease taken for a granted one (users_after_unlink)",
        POSIX_REMOVER,
        "            if said is not True:\n                self._lease_said[target] = said",
        "            if said is None:\n                self._lease_said[target] = said",
        [f"{B2_TESTS}::{B2_KEPT}", f"{B2_TESTS}::{B2_HANDED}", BLIND_SEARCH],
    ),
    (
        "lease first: every unlinked file looked for again (the shortcut dropped: safe, slower)",
        POSIX_REMOVER,
        "            if said is not True:\n                self._lease_said[target] = said",
        "            if True:\n                self._lease_said[target] = said",
        [ONE_WALK],
    ),
    (
        "L8: the first process of a PID namespace exits before its keepers",
        POSIX_REMOVER,
        "                    outlive(keeper_pid)\n                    result.note(OUTLIVED_NOTE)\n",
        "                    result.note(OUTLIVED_NOTE)\n",
        [f"{B2_TESTS_REVIEW}::{L8_TEST}"],
    ),
    (
        "L8: every cleaner waits for its keepers as it exits (the pid test inverted)",
        POSIX_REMOVER,
        "                if self.calls.getpid() == 1:\n",
        "                if self.calls.getpid() != 1:\n",
        [f"{B2_TESTS_REVIEW}::{L8_OTHER_SIDE}"],
    ),
    (
        "L8: a keeper that has ended is still waited for (its exit read the wrong way)",
        "app/uvsweep/remove/handoff.py",
        "        if os.waitpid(pid, os.WNOHANG)[0] == pid:\n            return False",
        "        if os.waitpid(pid, os.WNOHANG)[0] != pid:\n            return False",
        ["tests/unit/test_outlive.py"],
    ),
    (
        "L8: the first Ctrl-C gives the wait up",
        "app/uvsweep/remove/handoff.py",
        "            if len(caught) > 1:\n",
        "            if len(caught) > 0:\n",
        ["tests/unit/test_outlive.py"],
    ),
    (
        "L8: a keeper that cannot be signalled (EPERM) taken for ended",
        "app/uvsweep/remove/handoff.py",
        "        return True  # (EPERM: alive, not ours to signal)",
        "        return False  # (EPERM: alive, not ours to signal)",
        ["tests/unit/test_outlive.py"],
    ),
    (
        "M6: a breaking lease not looked at before the close (let_go closes every file)",
        POSIX_REMOVER,
        "            if target in leased and target.handle is not None and broken(target.handle):",
        "            if False:",
        [f"{SIXTH}::{M6_TEST}"],
    ),
    (
        "M6: a lease granted first not recorded (never looked at before the close)",
        POSIX_REMOVER,
        "            else:\n                self._leased.add(target)\n        try:",
        "            else:\n                pass\n        try:",
        # (since the lease before the unlink, only a lease granted after it: one that could not
        # be asked before, `test_lease_before_unlink.py`'s third case; M6's FUSE opener meets
        # the lease taken before the unlink)
        [f"{BEFORE_UNLINK}::{BLOCKED_OPENER}"],
    ),
    (
        "M6: a lease held read as breaking (every removed file handed over)",
        "app/uvsweep/probe/posix.py",
        "            if fcntl(fd, get_lease, 0) == wrlck:",
        "            if fcntl(fd, get_lease, 0) != wrlck:",
        # (every file is now kept before its unlink: the M6 FUSE test's teardown then hangs)
        [ONE_WALK, f"{PROTOCOL}::test_a_batch_whose_leases_are_all_granted_reads_no_lock_table"],
    ),
    # the lease before the unlink (`users_before_unlink`): a granted lease spares the lock table
    (
        "lease before: a granted lease taken as refused (the lock table read for every batch)",
        POSIX_REMOVER,
        "            if said is True:\n                leased.add(target)",
        "            if said is True and False:\n                leased.add(target)",
        [ONE_WALK, f"{PROTOCOL}::test_a_batch_whose_leases_are_all_granted_reads_no_lock_table"],
    ),
    (
        "lease before: a refused lease taken as granted (no lock table for it)",
        POSIX_REMOVER,
        "            if said is True:\n                leased.add(target)",
        "            if said is not None:\n                leased.add(target)",
        [f"{PROTOCOL}::{HIDDEN_WAITER}"],
    ),
    (
        "lease before: the lock table skipped even with a refused file",
        POSIX_REMOVER,
        "        return [t for t in targets if t not in leased] if leased else list(targets)",
        "        return []",
        [f"{PROTOCOL}::{HIDDEN_WAITER}", ONE_WALK],
    ),
    (
        "lease before: the lock table read for every file of a batch with a refused one (tabled)",
        POSIX_REMOVER,
        "        tabled = self.tabled(targets)",
        "        tabled = list(targets)",
        [ONE_WALK, f"{PROTOCOL}::test_a_batch_whose_leases_are_all_granted_reads_no_lock_table"],
    ),
    (
        "lease before: a broken lease not looked at before the unlink (handed over at the close)",
        POSIX_REMOVER,
        "            if target in leased and target not in found and broken(target.handle):",
        "            if False:",
        [f"{BEFORE_UNLINK}::{BLOCKED_OPENER}"],
    ),
    (
        "lease before: a lease granted before the unlink not recorded (asked again after it)",
        POSIX_REMOVER,
        "            if said is True:\n                leased.add(target)\n",
        "            if said is True:\n                pass\n",
        [f"{BEFORE_UNLINK}::{BLOCKED_OPENER}"],
    ),
    (
        "lease before: the walk before the unlink only for the refused files",
        POSIX_REMOVER,
        "        found = self.users(locked, result)  # (the lock table",
        "        found = self.users([t for t in locked if t not in leased], result)  # (",
        [f"{B2_TESTS_REVIEW}::test_a_description_the_lease_does_not_count_keeps_the_file"],
    ),
    (
        "alone_all: a failed F_SETLEASE of the kept leases' loop taken for granted",
        "app/uvsweep/probe/posix.py",
        "                said(alone(fd, keep))",
        "                said(granted)",
        [f"{ALONE}::test_alone_all_keeps_each_lease_granted_in_a_clean"],
    ),
    (
        "lease_broken: a broken lease never given up (F_UNLCK dropped)",
        "app/uvsweep/probe/posix.py",
        "                fcntl(fd, set_lease, unlck)\n        except OSError:",
        "                pass\n        except OSError:",
        [f"{ALONE}::test_alone_all_keeps_each_lease_granted_in_a_clean"],
    ),
    (
        "scan: an open that meets a cleaner's lease (EWOULDBLOCK) reported unreadable",
        "app/uvsweep/probe/posix.py",
        "        if err.errno in LEASED_ERRNOS:\n            return LockProbe.HELD",
        "        if False:\n            return LockProbe.HELD",
        [f"tests/unit/test_scan_races.py::{SCAN_LEASED}"],
    ),
    (
        "acquire: an open that meets another cleaner's lease (EWOULDBLOCK) not held",
        POSIX_REMOVER,
        "            if err.errno in LEASED_ERRNOS:  # another cleaner's lease",
        "            if False:  # another cleaner's lease",
        [f"{PROTOCOL}::test_a_file_another_cleaner_holds_the_lease_of_is_skipped_as_held"],
    ),
    (
        "M2: giving the wait up exits 0",
        "app/uvsweep/remove/handoff.py",
        "    if gave_up:\n        (end or _end_interrupted)()",
        "    if False:\n        (end or _end_interrupted)()",
        [
            "tests/unit/test_outlive.py",
            f"{SIXTH}::test_a_first_process_cleaner_that_gives_up_its_wait_says_so_in_its_exit_status",
        ],
    ),
    # run 8 (cosmic-ray over the lease code changed since 6ca413b): its survivors, killed
    (
        "alone_all: each lease kept by default (keep=False -> True) [run 8]",
        "app/uvsweep/probe/posix.py",
        "def alone_all(self, fds: Sequence[int], keep: bool = False)",
        "def alone_all(self, fds: Sequence[int], keep: bool = True)",
        [f"{ALONE}::test_alone_all_answers_each_in_order_and_gives_each_lease_back"],
    ),
    (
        "_alone_as_owner: a missing setfsuid called (the first `or` -> `and`) [run 8]",
        "app/uvsweep/probe/posix.py",
        "        if setfsuid is None or not isinstance(lease, tuple) or os.geteuid() != 0:",
        "        if setfsuid is None and not isinstance(lease, tuple) or os.geteuid() != 0:",
        [f"{ALONE}::test_root_without_cap_lease_that_cannot_be_the_owner_cannot_tell"],
    ),
    (
        "_alone_as_owner: the lease taken as the owner never given back (not keep -> keep) [run 8]",
        "app/uvsweep/probe/posix.py",
        "            fcntl(fd, set_lease, wrlck)\n            if not keep:\n",
        "            fcntl(fd, set_lease, wrlck)\n            if keep:\n",
        [f"{ALONE}::test_root_without_cap_lease_takes_the_lease_as_the_files_owner"],
    ),
    (
        "_alone_as_owner: a failed fstat for the owner raised (except OSError narrowed) [run 8]",
        "app/uvsweep/probe/posix.py",
        "            owner = os.fstat(fd).st_uid\n        except OSError:\n",
        "            owner = os.fstat(fd).st_uid\n        except ZeroDivisionError:\n",
        [f"{ALONE}::test_root_without_cap_lease_that_cannot_be_the_owner_cannot_tell"],
    ),
    (
        "_load_lease: an fcntl without F_SETLEASE (macOS, BSD) raises (AttributeError) [run 8]",
        "app/uvsweep/probe/posix.py",
        "    except (ImportError, AttributeError):\n        _LEASE = False",
        "    except (ImportError, ZeroDivisionError):\n        _LEASE = False",
        [f"{ALONE}::test_where_there_are_no_leases_it_cannot_tell"],
    ),
    (
        "_load_setfsuid: a libc without setfsuid (macOS, BSD) raises (AttributeError) [run 8]",
        "app/uvsweep/probe/posix.py",
        "(ImportError, OSError, AttributeError)",
        "(ImportError, OSError, ZeroDivisionError)",
        [f"{ALONE}::test_where_setfsuid_cannot_be_had_it_is_none"],
    ),
    (
        "_load_setfsuid: a libc that cannot be loaded raises (OSError) [run 8]",
        "app/uvsweep/probe/posix.py",
        "(ImportError, OSError, AttributeError)",
        "(ImportError, ZeroDivisionError, AttributeError)",
        [f"{ALONE}::test_where_setfsuid_cannot_be_had_it_is_none"],
    ),
    (
        "_load_setfsuid: no ctypes raises (ImportError) [run 8]",
        "app/uvsweep/probe/posix.py",
        "(ImportError, OSError, AttributeError)",
        "(ZeroDivisionError, OSError, AttributeError)",
        [f"{ALONE}::test_where_setfsuid_cannot_be_had_it_is_none"],
    ),
    (
        "ignore_lease_breaks: SIGIO ignored on other OSes too (or not LINUX -> and) [run 8]",
        "app/uvsweep/probe/posix.py",
        "    if _SIGIO_IGNORED or not system.LINUX:",
        "    if _SIGIO_IGNORED and not system.LINUX:",
        [f"{ALONE}::test_lease_breaks_are_ignored_only_from_the_main_thread_on_linux"],
    ),
    (
        "ignore_lease_breaks: a subinterpreter's ValueError raised (except narrowed) [run 8]",
        "app/uvsweep/probe/posix.py",
        "(ValueError, OSError, AttributeError)",
        "(ZeroDivisionError, OSError, AttributeError)",
        [f"{ALONE}::test_lease_breaks_are_left_alone_in_a_subinterpreter"],
    ),
    (
        "L5: root's note said though its walk saw every process (euid != 0 -> != 1) [run 8]",
        POSIX_REMOVER,
        "if self.unasked and (done.hidden_processes or self.euid != 0):",
        "if self.unasked and (done.hidden_processes or self.euid != 1):",
        [
            (
                f"{B2_TESTS_REVIEW}::test_root_says_the_kernel_could_not_be_asked_only_where_a"
                "_process_was_hidden"
            )
        ],
    ),
    (
        "L5: the note said of 0 files (`self.unasked and` -> `or`) [run 8]",
        POSIX_REMOVER,
        "if self.unasked and (done.hidden_processes or self.euid != 0):",
        "if self.unasked or (done.hidden_processes or self.euid != 0):",
        [
            (
                f"{B2_TESTS_REVIEW}::test_root_says_the_kernel_could_not_be_asked_only_where_a"
                "_process_was_hidden"
            )
        ],
    ),
    (
        # the session's kill of these two was the L8 race in another test (see MUTATION.md)
        "L5: the note said where every lease was asked (`not` added) [run 8]",
        POSIX_REMOVER,
        "if self.unasked and (done.hidden_processes or self.euid != 0):",
        "if not self.unasked and (done.hidden_processes or self.euid != 0):",
        [
            (
                f"{B2_TESTS_REVIEW}::test_root_says_the_kernel_could_not_be_asked_only_where_a"
                "_process_was_hidden"
            )
        ],
    ),
    (
        "_load_lease: no fcntl (Windows) raises (ImportError) [run 8]",
        "app/uvsweep/probe/posix.py",
        "    except (ImportError, AttributeError):\n        _LEASE = False",
        "    except (ZeroDivisionError, AttributeError):\n        _LEASE = False",
        [f"{ALONE}::test_where_there_are_no_leases_it_cannot_tell"],
    ),
    # acquire's common case, decided without `_may_lock` (the collector-pause session)
    (
        "acquire's common case: a hard-linked file taken (st_nlink == 1 -> >= 1)",
        POSIX_REMOVER,
        "                st.st_nlink == 1\n                and not st.st_size\n",
        "                st.st_nlink >= 1\n                and not st.st_size\n",
        [
            f"{FINDINGS}::test_a_hard_link_made_while_it_is_held_is_held_in_clean_as_in_scan",
            f"{FINDINGS}::test_a_file_hard_linked_while_held_is_never_removed",
            "tests/integration/test_clean_protocol.py",
        ],
    ),
    (
        "acquire's common case: a file with data taken (the size not looked at)",
        POSIX_REMOVER,
        "                and not st.st_size\n                and st.st_mode",
        "                and st.st_mode",
        [
            f"{FINDINGS}::test_a_non_empty_file_at_the_name_is_never_removed",
            "tests/integration/test_clean_protocol.py",
        ],
    ),
    (
        "acquire's common case: a file of any type taken (the type not looked at)",
        POSIX_REMOVER,
        "                and st.st_mode & _FILE_TYPE == stat.S_IFREG\n",
        "",
        [
            f"{KILLS}::test_a_file_of_another_type_swapped_in_before_the_open_is_kept_for_its_type",
        ],
    ),
    (
        "acquire's common case: the policy's answer ignored (a young or foreign file taken)",
        POSIX_REMOVER,
        "                ) is None\n            ) or self._may_lock(",
        "                ) is None or True\n            ) or self._may_lock(",
        [
            "tests/integration/test_clean_protocol.py::test_min_age",
            f"{KILLS}::test_another_users_file_is_kept_and_its_owner_named",
        ],
    ),
    # the table's warmer started only after a batch has read the table (the lazy-warmer session)
    (
        "lazy warmer: started in every batch (the table's read not waited for)",
        POSIX_REMOVER,
        "        if self._table_wanted and self._warmer is None:\n",
        "        if self._warmer is None:\n",
        [
            f"{WARMER}::test_a_removal_that_never_reads_the_table_never_warms_it",
        ],
    ),
    (
        "lazy warmer: never started (a read of the table not remembered)",
        POSIX_REMOVER,
        "        self._table_wanted = True  # (the next batch keeps it warm: `begin_batch`)\n",
        "",
        [
            f"{WARMER}::test_a_removal_warms_the_table_after_its_first_read_and_leaves_nothing_behind",
        ],
    ),
    (
        "lazy warmer: stopped only when a removal returns (not when it raises)",
        POSIX_REMOVER,
        (
            "        try:\n            return super().remove(dirs, policy, result)\n"
            "        finally:\n            self._cool()\n"
        ),
        (
            "        done = super().remove(dirs, policy, result)\n        self._cool()\n"
            "        return done\n"
        ),
        [f"{WARMER}::test_a_removal_that_fails_while_the_table_is_warm_leaves_nothing_behind"],
    ),
    (
        "fd table: not grown before a removal's first open (doubled as files are opened)",
        POSIX_REMOVER,
        "        if len(names) > FD_TABLE_START:\n",
        "        if False:\n",
        [f"{WARMER}::test_a_removal_grows_the_fd_table_before_its_first_open"],
    ),
    # M3: a cleaner run by its namespace's first process, one that ends with it
    (
        "M3: a cleaner run by a shell as its namespace's first process does not wait",
        POSIX_REMOVER,
        "                elif (init := self.init_ending_with_us()) is not None:\n",
        "                elif (init := self.init_ending_with_us()) is None and False:\n",
        [f"{SIXTH}::test_a_cleaner_whose_namespace_ends_with_it_never_leaves_two_holders"],
    ),
    (
        "M3: any first process of a child namespace taken to end with the cleaner (no name)",
        POSIX_REMOVER,
        "            if name in INITS_ENDING_WITH_THEIR_CHILD:\n",
        "            if True:\n",
        [INIT_ENDING],
    ),
    (
        "M3: a parent that is not the namespace's first process taken for it",
        POSIX_REMOVER,
        "        if self.calls.getppid() != 1:\n            return None\n",
        "",
        [INIT_ENDING],
    ),
    (
        "M3: pid 1 of the initial namespace taken for a child namespace's (no check)",
        POSIX_REMOVER,
        '        if pid_namespace(self.proc) != "child":\n',
        "        if False:\n",
        [INIT_ENDING],
    ),
    (
        "M3: the first process known by its comm alone (an entrypoint script missed)",
        POSIX_REMOVER,
        (
            '            lambda: self.calls.read(f"{process}/cmdline")'
            '.split(b"\\0")[0].decode("latin-1"),\n'
            '            lambda: self.calls.readlink(f"{process}/exe"),\n'
        ),
        "",
        [INIT_ENDING],
    ),
    (
        "M3: a zombie keeper nobody reaps taken for a running one (the pidfd not asked)",
        "app/uvsweep/remove/handoff.py",
        "    ended = _exited(pid)\n",
        "    ended = None\n",
        [f"{INIT_ENDING}::test_a_zombie_that_is_not_our_child_has_ended"],
    ),
    (
        "lazy warmer: a removal starts warm from the last one's read (never reset)",
        POSIX_REMOVER,
        "        self._table_wanted = False\n        try:\n",
        "        try:\n",
        [
            f"{WARMER}::test_a_removal_after_one_that_read_the_table_starts_cold",
        ],
    ),
]


def _copy(scratch: Path) -> None:
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
        capture_output=True,
    ).stdout.split(b"\0")  # fmt: skip
    for name in filter(None, files):
        target = scratch / os.fsdecode(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / os.fsdecode(name), target)
    scratch.chmod(0o755)


def _run(scratch: Path, tests: list[str], timeout: float = 120.0, show: bool = False) -> str:
    env = {
        **os.environ, "PYTHONPATH": str(scratch / "app"), "PYTHONDONTWRITEBYTECODE": "1",
        "UVSWEEP_REQUIRE_SYSTEM": "1", "UVSWEEP_ACCEPT_HIDDEN_PROCESSES": "1",
    }  # fmt: skip
    argv = ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-m", "pytest", "-q",
            "-p", "no:cacheprovider", *tests]  # fmt: skip
    try:
        done = subprocess.run(
            argv, cwd=scratch, env=env, capture_output=True, text=True, timeout=timeout,
            check=False, start_new_session=True,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return "HUNG"
    if show and done.returncode != 0:
        print(done.stdout[-3000:])
    if done.returncode == 0:
        return "SURVIVED"
    # pytest's 1 is a failed test; anything else (a test id not found, nothing collected, an
    # internal error) says nothing of the mutant
    return "KILLED" if done.returncode == 1 else f"ERROR({done.returncode})"


def main() -> int:
    scratch = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/uvsweep-mutation-named")
    _copy(scratch)
    words = sys.argv[2:]
    chosen = [m for m in MUTANTS if not words or any(word in m[0] for word in words)]
    every = sorted({test for *_, tests in chosen for test in tests})
    if _run(scratch, every, show=True) != "SURVIVED":
        print("the unmutated tree fails these tests: no verdict")
        return 1
    worst = 0
    for name, path, text, mutant, tests in chosen:
        source = scratch / path
        original = source.read_text()
        assert original.count(text) == 1, f"{name}: the text to mutate is not there once"
        source.write_text(original.replace(text, mutant))
        try:
            began = time.monotonic()
            verdict = _run(scratch, tests)
        finally:
            source.write_text(original)
        worst = max(worst, verdict != "KILLED")
        print(f"{verdict:8} {time.monotonic() - began:5.1f}s  {name}", flush=True)
    return worst


if __name__ == "__main__":
    sys.exit(main())
