"""qsyncd benchmarks: qsyncd against rclone, curl and local hashing, against the issue-5 targets.

Run ``python -m bench`` (``--quick`` to iterate, ``--big`` for a 4 GiB file, ``--only SCENARIO``).
It starts its own emulator subprocess, generates its data in a temporary directory (removed
afterwards), alternates contenders round by round and reports medians and ratios. Times are
printed, never asserted. See BENCHMARKS.md.
"""
