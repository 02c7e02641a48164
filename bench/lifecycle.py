"""Benchmark: registration latency and throughput, and how fast a room's rule follows its life
(webhook -> rule), with their floors: the "lifecycle" part of `python -m bench`.

Runs the real stack (bench/harness.py): a Temporal server (the CLI dev server, or the PostgreSQL
cluster with `--temporal cluster`), the worker and the gateway as processes, the LiveKit emulator
in this process. Timings on a shared 2-core machine are noisy: read them as orders of magnitude.

    .venv/bin/python -m bench.lifecycle [--temporal dev|cluster] [any flag of python -m bench]
"""

from __future__ import annotations

import sys

from bench.run import main

if __name__ == "__main__":
    main(["--sections", "floors,registration,callable", *sys.argv[1:]])
