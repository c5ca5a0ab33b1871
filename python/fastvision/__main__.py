"""``python -m fastvision ...``: the ``fastvision`` command line, run by the engine in this process."""

import os
import signal
import sys

from fastvision import _engine


def main() -> None:
    """Runs the command line with this process's arguments and exits with its code."""
    # The command line's own behaviour on Ctrl-C: stop at once (a run folder keeps its last
    # finished epoch and resumes), as the native program does.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # `launch` starts its ranks with this interpreter, as `python -m fastvision`.
    os.environ.setdefault("FASTVISION_LAUNCH_PYTHON", sys.executable)
    sys.exit(_engine.cli_main(["fastvision", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
