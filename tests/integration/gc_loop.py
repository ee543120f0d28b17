"""``cargohold gc`` run again and again in one process, for ``test_gc_online.py``.

Usage: ``python -m tests.integration.gc_loop DATA_DIR STOP_FILE OUT_FILE [ARGS...]``.
Runs the ``gc`` command in-process (the same code as the CLI, without paying the
interpreter start-up per pass) until ``STOP_FILE`` exists or ``MAX_SECONDS`` passed.
Each pass appends one JSON line to ``OUT_FILE``: its ``time.monotonic()`` window (the
clock is system-wide on Linux, so the test can compare it with its own) and what the
command printed. Extra ``ARGS`` alternate: pass ``n`` runs ``gc`` with ``ARGS[n % len]``
(words split on ``,``); a word ``NAME=VALUE`` sets that environment variable for the
pass only (a different grace period, say). The grace period comes from the environment.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from cargohold.cli import main as cli

# A bound only: the test stops the loop when its pushers are done, which on a loaded
# box with PostgreSQL (pushers retrying lost races) took longer than four minutes.
MAX_SECONDS = 600.0


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run(data_dir: str, stop: Path, out: Path, variants: list[list[str]]) -> int:
    deadline = time.monotonic() + MAX_SECONDS
    passes = 0
    with out.open("a") as log:
        while not stop.exists() and time.monotonic() < deadline:
            words = variants[passes % len(variants)]
            args = ["gc", "--data-dir", data_dir, *(w for w in words if "=" not in w)]
            scoped = dict(w.split("=", 1) for w in words if "=" in w)
            printed = io.StringIO()
            started = time.monotonic()
            with contextlib.redirect_stdout(printed), environment(scoped):
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
