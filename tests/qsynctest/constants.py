"""The names every test shares: the test credentials, the bucket and where the checkout is."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

ACCESS_KEY = "QSYNCDTESTKEY"
# One secret per test session (kept in the environment, so every import and child sees the same one);
# tests grep every captured output for it.
SECRET = os.environ.setdefault("QSYNCD_TEST_SECRET", "sk-" + secrets.token_hex(16))
BUCKET = "qsyncd-test"
REPO = Path(__file__).resolve().parents[2]
