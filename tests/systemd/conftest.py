"""Fixtures for tests against real systemd pieces: ``journald``, ``notify_socket`` and ``nspawn``.

The implementations live in ``sdharness.py`` beside this file so that tests outside this directory
(tests/test_events.py, tests/test_notify.py) can import the same fixtures.
"""

from sdharness import journald, notify_socket, nspawn  # noqa: F401  (re-exported as fixtures)
