"""Fixtures for the S3 tests: a session-wide SeaweedFS and a new bucket per test (``qsynctest.seaweed``)."""

from __future__ import annotations

from qsynctest.seaweed import s3_bucket, seaweed  # noqa: F401  (fixtures)
