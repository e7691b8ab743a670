"""``python -m colorlab.benchmarks.peak_rss ARGS``: ``colorlab.colorize ARGS``, then print the
process's peak resident memory (``peak_rss_kb N``; VmHWM is per address space, so the
memory row runs colorize in a process of its own)."""

from __future__ import annotations

import sys

from colorlab.colorize import main


def run() -> int:
    code: int | str | None = 0
    try:
        main()
    except SystemExit as error:
        code = error.code
    with open("/proc/self/status") as status:
        print("peak_rss_kb", status.read().split("VmHWM:")[1].split()[0], flush=True)
    return code if isinstance(code, int) else (0 if code is None else 1)


if __name__ == "__main__":
    sys.exit(run())
