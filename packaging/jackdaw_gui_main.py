"""Entry script of the windowed launcher (Windows ``jackdaw-gui.exe``, macOS ``Jackdaw.app``):
``jackdaw gui`` without a console window. On Linux the ``.desktop`` entry runs
``jackdaw gui`` instead, so this script is not built there."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from agent_core.cli import main

    sys.exit(main(["gui", *sys.argv[1:]]))
