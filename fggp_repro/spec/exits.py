"""Exit codes of ``fggp-repro``: what a caller (a shell, the grid, a scheduler) may decide from.

The grid tells a finished run from a paused one by these codes alone, never by a child's words.
"""

EXIT_OK = 0
EXIT_FAILED = 1  # verify: a mismatch; grid: a run failed; selftest: a probe drifted on its own platform
EXIT_DIVERGED = 3  # train: the run diverged (its record says so); not 1, what Python exits with on any crash
EXIT_USAGE = 2  # bad input or environment: one line on stderr naming the fix
EXIT_STOPPED = 75  # train: stopped as asked (--stop-after-epochs, a deadline) with a checkpoint to resume from
#                    (sysexits' EX_TEMPFAIL: not finished, try again)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as a shell reports it
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of the output went away (``fggp-repro audit | head``)
EXIT_TERMINATED = 143  # SIGTERM (128 + 15): kill, a scheduler's time limit, a grid stopping its runs
