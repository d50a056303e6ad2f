"""Fixtures and hooks of the reliability suite. The code lives in ``relsupport`` (import helpers from
there: every test folder has a conftest.py and they all share that module name)."""

from relsupport import *  # noqa: F403
from relsupport import _spy_signatures  # noqa: F401  (an autouse fixture; star imports skip _names)
