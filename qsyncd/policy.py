"""What a failed upload means: retry the file, give it up, or pause every upload. Pure and table-tested.

Errors arrive classified by consequence (``qsyncd.errors``; each store's codes are mapped in its
``remote`` module), so this module names no store and no error code:

- ``Unreachable`` (no connection at all): in the service, every upload pauses; the file waits and the
  endpoint is tried again after ``UNREACHABLE_BACKOFF_INITIAL`` seconds, doubling to
  ``UNREACHABLE_BACKOFF_MAX`` (one probe per step, not one per file). In ``sync`` it is a transient failure.
- ``StoreRefused`` (wrong credentials, skewed clock, missing bucket: every request would fail): the service
  pauses every upload for ``permanent_retry_seconds``; ``sync`` stops the pass (it can only fail the same way
  for every other file).
- any other ``PermanentError`` (one key refused, a bad request): the file is tried again after
  ``permanent_retry_seconds`` (the cause is usually a fix the operator makes meanwhile); ``sync`` gives it up.
- anything else (5xx, resets, timeouts, local I/O errors): retried with exponential backoff from
  ``retry_initial_seconds`` to ``retry_max_seconds``; ``sync`` waits at most ``SYNC_RETRY_MAX_SECONDS``
  between attempts and gives a file up after ``SYNC_MAX_ATTEMPTS`` failed attempts.

Within one multipart upload a failed part is retried ``part_retries`` times (delays capped at
``PART_RETRY_MAX_SECONDS``) before the file as a whole counts as failed: ``part_retry_delay``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

from qsyncd.errors import PermanentError, StoreRefused, Unreachable
from qsyncd.retry import backoff_delay

SYNC_MAX_ATTEMPTS = 4  # `qsyncd sync` gives a file up after this many failed attempts
SYNC_RETRY_MAX_SECONDS = 8.0  # ... waiting at most this long between them (a one-shot run should end)
UNREACHABLE_BACKOFF_INITIAL = 1.0  # the service probes an unreachable endpoint after 1 s, 2 s, 4 s ...
UNREACHABLE_BACKOFF_MAX = 60.0  # ... up to once a minute
PART_RETRY_MAX_SECONDS = 30.0  # the longest wait before resending one part (retry_max_seconds if shorter)

Action = Literal["pause_unreachable", "pause_refused", "stop_pass", "retry", "give_up"]


@dataclass(frozen=True)
class RetryRules:
    """The ``[upload]`` retry settings, and whether this run ends (``sync``) or goes on (the service)."""

    initial: float
    maximum: float
    permanent: float
    part_retries: int  # no default here: [upload] part_retries (UploadConfig) is the one source
    finite: bool = False


class Verdict(NamedTuple):
    """What to do after a failure: ``delay`` seconds until the file (or every file) is tried again.

    ``pause_*`` and ``stop_pass`` are not the file's fault: they do not count as a failed attempt."""

    action: Action
    delay: float = 0.0
    permanent: bool = False

    @property
    def counts_as_attempt(self) -> bool:
        """Whether the file's failed attempts go up (and it is reported as failing)."""
        return self.action in ("retry", "give_up")


def after_failure(
    err: BaseException,
    attempt: int,
    outage_failures: int,
    rules: RetryRules,
    *,
    rand: Callable[[], float] = random.random,
) -> Verdict:
    """The verdict on the ``attempt``-th failed attempt (1-based) of one file.

    ``outage_failures`` is how many failures the current outage has seen (0 when the remote was up).
    """
    if isinstance(err, Unreachable) and not rules.finite:
        delay = backoff_delay(outage_failures + 1, UNREACHABLE_BACKOFF_INITIAL, UNREACHABLE_BACKOFF_MAX, rand=rand)
        return Verdict("pause_unreachable", delay)
    if isinstance(err, StoreRefused):
        return Verdict("stop_pass", permanent=True) if rules.finite else Verdict("pause_refused", rules.permanent, True)
    permanent = isinstance(err, PermanentError)
    if rules.finite and (permanent or attempt >= SYNC_MAX_ATTEMPTS):
        return Verdict("give_up", permanent=permanent)
    if permanent:
        return Verdict("retry", rules.permanent, True)
    cap = min(rules.maximum, SYNC_RETRY_MAX_SECONDS) if rules.finite else rules.maximum
    return Verdict("retry", backoff_delay(attempt, rules.initial, cap, rand=rand))


def part_retry_delay(attempt: int, rules: RetryRules, *, rand: Callable[[], float] = random.random) -> float | None:
    """Seconds before resending a part after its ``attempt``-th transient failure, or None: give the file up."""
    if attempt > rules.part_retries:
        return None
    return backoff_delay(attempt, rules.initial, min(rules.maximum, PART_RETRY_MAX_SECONDS), rand=rand)
