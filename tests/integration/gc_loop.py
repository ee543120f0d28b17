"""``cargohold gc`` run again and again in one process, for ``test_gc_online.py``.

Usage: ``python -m tests.integration.gc_loop DATA_DIR STOP_FILE OUT_FILE [ARGS...]``.
Runs the ``gc`` command in-process (the same code as the CLI, without paying the
interpreter start-up per pass) until ``STOP_FILE`` exists or ``MAX_SECONDS`` passed.
Each pass appends one JSON line to ``OUT_FILE``: its ``time.monotonic()`` window (the
clock is system-wide on Linux, so the test can compare it with its own) and what the
command printed. Extra ``ARGS`` alternate: pass ``n`` runs ``gc`` with ``ARGS[n % len]``
(words split on ``,``). The grace period comes from the environment.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from pathlib import Path

from cargohold.cli import main as cli

# A bound only: the test stops the loop when its pushers are done, which on a loaded
# box with PostgreSQL (pushers retrying lost races) took longer than four minutes.
MAX_SECONDS = 600.0


def run(data_dir: str, stop: Path, out: Path, variants: list[list[str]]) -> int:
    deadline = time.monotonic() + MAX_SECONDS
    passes = 0
    with out.open("a") as log:
        while not stop.exists() and time.monotonic() < deadline:
            args = ["gc", "--data-dir", data_dir, *variants[passes % len(variants)]]
            printed = io.StringIO()
            started = time.monotonic()
            with contextlib.redirect_stdout(printed):
                cli.main(args=args, standalone_mode=False)
            line = {
                "start": started,
                "end": time.monotonic(),
                "out": printed.getvalue(),
            }
            log.write(json.dumps(line) + "\n")
            log.flush()
            passes += 1
    return passes


if __name__ == "__main__":
    DATA_DIR, STOP, OUT, *VARIANTS = sys.argv[1:]
    CHOICES = [v.split(",") if v else [] for v in VARIANTS] or [[]]
    run(DATA_DIR, Path(STOP), Path(OUT), CHOICES)
