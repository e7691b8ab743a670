"""``python -m colorlab.X …`` for the tests without paying Python's start-up each time.

A command started as a new interpreter spends 4–8 s on this 2-core machine importing torch,
Lightning and Hydra before it does anything, and the suite starts about a hundred of them.
`run_module` instead forks the command from a fork server (`multiprocessing`'s forkserver)
that imported those libraries once: every command still runs in its own new process — its
own working directory, environment, signal handlers, Hydra and logging state, stdout and
stderr, exit status — as ``python -m module args`` would, only without the imports.

What a fork cannot give is what an interpreter reads only when it starts; `needs_fresh`
names it (``PYTHONPATH``, Hugging Face's ``HF_HOME``), and those commands, the entry points'
own smoke tests and every command when ``COLORLAB_TEST_FRESH_CLI=1`` start a new interpreter.
"""

from __future__ import annotations

import atexit
import importlib
import multiprocessing
import os
import runpy
import signal
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

#: Imported once by the fork server: what the commands import first (not the commands' own
#: modules, which ``python -m`` runs as ``__main__``).
PRELOAD = [
    "numpy",
    "PIL.Image",
    "torch",
    "torchvision",
    "kornia",
    "hydra",
    "omegaconf",
    "lightning",
    "colorlab.cli.runner",
    "colorlab.cli.validation",
    "colorlab.data.datamodule",
    "colorlab.models",
    "colorlab.losses",
    "colorlab.training.module",
    "colorlab.training.callbacks",
    "colorlab.training.checkpoints",
    "colorlab.training.loggers",
    "colorlab.inference.colorizer",
    "colorlab.inference.jobs",
    "colorlab.inference.evaluation",
    "colorlab.inference.video_evaluation",
]

#: Environment variables read only when an interpreter (or a library not preloaded) starts.
_STARTUP_VARIABLES = ("PYTHONPATH", "HF_HOME", "PYTHONHASHSEED", "OMP_NUM_THREADS")

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(PRELOAD)


def needs_fresh(env: dict[str, str]) -> bool:
    """Whether a command with environment ``env`` must start a new interpreter."""
    if os.environ.get("COLORLAB_TEST_FRESH_CLI", "") not in ("", "0"):
        return True
    return any(env.get(name) != os.environ.get(name) for name in _STARTUP_VARIABLES)


def stop() -> None:
    """Stop the fork server, if it started, as the end of a session: it exits as an
    interpreter does, so that coverage saves what it measured there (the imports) before
    pytest-cov combines the data. (``ForkServer._stop`` is the stdlib's own test hook.)"""
    from multiprocessing import forkserver

    stop_server = getattr(forkserver._forkserver, "_stop", None)
    if stop_server is not None:
        stop_server()


def run_module(
    module: str, args: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess:
    """Run ``python -m module args`` in ``cwd`` with environment ``env`` in a process forked
    from the fork server; its stdout, stderr and exit status as `subprocess.run` gives them."""
    with tempfile.TemporaryDirectory(prefix="colorlab-cli-") as folder:
        out, err = Path(folder) / "stdout", Path(folder) / "stderr"
        process = _context.Process(
            target=_run_as_main, args=(module, args, str(cwd), env, str(out), str(err))
        )
        process.start()
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join()
            raise subprocess.TimeoutExpired([module, *args], timeout)
        return subprocess.CompletedProcess(
            [sys.executable, "-m", module, *args],
            process.exitcode,  # negative: ended by that signal, as subprocess says
            out.read_text(encoding="utf-8", errors="replace") if out.exists() else "",
            err.read_text(encoding="utf-8", errors="replace") if err.exists() else "",
        )


def _run_as_main(
    module: str, args: list[str], cwd: str, env: dict[str, str], out: str, err: str
) -> None:
    """In the forked child: become ``python -m module args`` and exit as it would."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    # A new interpreter's signals: Ctrl-C raises KeyboardInterrupt, SIGTERM ends the process.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    sys.stdout = open(1, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115
    sys.argv = [module, *args]
    # ``python -m`` puts the working directory first on the path (a test's helper modules)
    sys.path[0] = cwd
    importlib.invalidate_caches()
    code = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        if exit_.code is None:
            code = 0
        elif isinstance(exit_.code, int):
            code = exit_.code
        else:
            print(exit_.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        traceback.print_exc()
        code = -signal.SIGINT  # the interpreter ends itself by SIGINT
    except BaseException:  # noqa: BLE001 - as the interpreter reports an uncaught error
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()  # what the interpreter runs at exit (os._exit skips it)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        if code < 0:
            signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
        os._exit(code)
