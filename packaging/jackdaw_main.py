"""Entry script of the PyInstaller build: the ``jackdaw`` console command (``agent_core.cli``).

In a frozen app ``sys.executable`` is this program, not a Python interpreter, and the
``run_python`` tool starts ``sys.executable -I -c BOOTSTRAP ...`` for the model's code
(tools/builtins/python_runner.py). So, started as ``jackdaw [-I|-E|-s|-S|-B|-u ...] -c CODE
[ARG ...]``, this program behaves as ``python -c``: it runs CODE with the bundled interpreter
(the standard library modules listed in bundle_config.RUN_PYTHON_STDLIB, plus whatever the app
itself carries) and never touches Jackdaw. Nothing a user types reaches this path: no
``jackdaw`` subcommand starts with ``-``, and ``-c`` is not one of its options.
"""

import os
import sys

_PYTHON_FLAGS = {"-I", "-E", "-s", "-S", "-B", "-u"}  # accepted and ignored: already the case


def _python_c(argv: list[str]) -> list[str] | None:
    """The ``-c`` program and its arguments if ``argv`` is a ``python -c`` command line."""
    i = 0
    while i < len(argv) and argv[i] in _PYTHON_FLAGS:
        i += 1
    if i + 1 < len(argv) and argv[i] == "-c":
        return argv[i + 1 :]
    return None


def _run_python_c(code: str, args: list[str]) -> int:
    import builtins
    import traceback

    sys.argv = ["-c", *args]
    namespace = {"__name__": "__main__", "__builtins__": builtins, "__doc__": None}
    try:
        exec(compile(code, "<string>", "exec"), namespace)
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def _restore_environment() -> None:
    """Child processes get the user's environment, not the app's (Linux).

    PyInstaller's bootloader sets LD_LIBRARY_PATH to the app's ``_internal`` folder, and its
    PySide6 runtime hook sets QT_PLUGIN_PATH and QML2_IMPORT_PATH. This process does not need
    them any more: the dynamic loader read LD_LIBRARY_PATH when the process started, and
    PySide6 finds its plugins through its own qt.conf (the smoke test renders the window with
    them gone). Children would inherit them: a PDF viewer or file manager started to open a
    source (xdg-open, QProcess.startDetached) would load the app's Qt and libraries instead of
    its own, and crash. Done here, not in a runtime hook, because PyInstaller runs custom
    runtime hooks before its own. Windows and macOS are left alone (not verified there).
    """
    if not (getattr(sys, "frozen", False) and sys.platform.startswith("linux")):
        return
    original = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
    if original is not None:
        os.environ["LD_LIBRARY_PATH"] = original
    else:
        os.environ.pop("LD_LIBRARY_PATH", None)
    for name in ("QT_PLUGIN_PATH", "QML2_IMPORT_PATH"):
        os.environ.pop(name, None)


if __name__ == "__main__":
    _restore_environment()
    python_c = _python_c(sys.argv[1:])
    if python_c is not None:
        sys.exit(_run_python_c(python_c[0], python_c[1:]))

    import multiprocessing

    multiprocessing.freeze_support()  # a no-op unless a frozen Windows child process starts
    from agent_core.cli import main

    sys.exit(main())
