"""Table tests of qsyncd.policy: what each kind of failure means in the service and in `qsyncd sync`."""

from __future__ import annotations

import dataclasses

import pytest

from qsyncd.errors import (
    AuthError,
    BadRequest,
    BucketMissing,
    CredentialsRejected,
    NotFound,
    TransientError,
    Unreachable,
)
from qsyncd.policy import (
    PART_RETRY_MAX_SECONDS,
    SYNC_MAX_ATTEMPTS,
    SYNC_RETRY_MAX_SECONDS,
    UNREACHABLE_BACKOFF_MAX,
    RetryRules,
    after_failure,
    part_retry_delay,
)

SERVICE = RetryRules(initial=1.0, maximum=300.0, permanent=900.0, part_retries=4)
SYNC = dataclasses.replace(SERVICE, finite=True)
TOP = lambda: 1.0  # noqa: E731  (jitter at its top: delays are the full base)

CASES = [
    # (error, attempt, outage failures, rules) -> (action, delay, permanent)
    pytest.param(Unreachable("down"), 1, 0, SERVICE, "pause_unreachable", 1.0, False, id="service: first outage probe"),
    pytest.param(Unreachable("down"), 1, 3, SERVICE, "pause_unreachable", 8.0, False, id="service: outage backs off"),
    pytest.param(
        Unreachable("down"),
        1,
        20,
        SERVICE,
        "pause_unreachable",
        UNREACHABLE_BACKOFF_MAX,
        False,
        id="service: outage capped",
    ),
    pytest.param(Unreachable("down"), 1, 0, SYNC, "retry", 1.0, False, id="sync: unreachable is transient"),
    pytest.param(
        Unreachable("down"), SYNC_MAX_ATTEMPTS, 0, SYNC, "give_up", 0.0, False, id="sync: gives up at the cap"
    ),
    pytest.param(
        CredentialsRejected("key"), 1, 0, SERVICE, "pause_refused", 900.0, True, id="service: wrong key pauses"
    ),
    pytest.param(
        BucketMissing("no bucket"), 1, 0, SERVICE, "pause_refused", 900.0, True, id="service: no bucket pauses"
    ),
    pytest.param(BucketMissing("no bucket"), 1, 0, SYNC, "stop_pass", 0.0, True, id="sync: no bucket ends the pass"),
    pytest.param(AuthError("403 on one key"), 1, 0, SERVICE, "retry", 900.0, True, id="service: one key refused"),
    pytest.param(AuthError("403 on one key"), 1, 0, SYNC, "give_up", 0.0, True, id="sync: one key refused, at once"),
    pytest.param(BadRequest("bad"), 2, 0, SERVICE, "retry", 900.0, True, id="service: bad request waits long"),
    pytest.param(TransientError("503"), 1, 0, SERVICE, "retry", 1.0, False, id="service: 503 backs off"),
    pytest.param(TransientError("503"), 4, 0, SERVICE, "retry", 8.0, False, id="service: 503 doubles"),
    pytest.param(TransientError("503"), 50, 0, SERVICE, "retry", 300.0, False, id="service: never gives up"),
    pytest.param(TransientError("503"), 3, 0, SYNC, "retry", 4.0, False, id="sync: 503 retried"),
    pytest.param(TransientError("503"), SYNC_MAX_ATTEMPTS, 0, SYNC, "give_up", 0.0, False, id="sync: 503 given up"),
    pytest.param(NotFound("upload gone"), 1, 0, SERVICE, "retry", 1.0, False, id="a vanished upload is transient"),
    pytest.param(OSError(5, "EIO"), 1, 0, SERVICE, "retry", 1.0, False, id="local I/O error is transient"),
]


@pytest.mark.parametrize(("err", "attempt", "outage", "rules", "action", "delay", "permanent"), CASES)
def test_after_failure(err, attempt, outage, rules, action, delay, permanent) -> None:  # type: ignore[no-untyped-def]
    """Each row: one failure, and what happens next."""
    v = after_failure(err, attempt, outage, rules, rand=TOP)
    assert (action, delay, permanent) == (v.action, v.delay, v.permanent)
    assert v.counts_as_attempt == (action in ("retry", "give_up"))


def test_sync_waits_at_most_its_cap_between_attempts() -> None:
    """A one-shot run must end: its backoff never exceeds SYNC_RETRY_MAX_SECONDS, nor retry_max_seconds."""
    long = dataclasses.replace(SYNC, initial=5.0)
    assert SYNC_RETRY_MAX_SECONDS == after_failure(TransientError("x"), 3, 0, long, rand=TOP).delay
    short = dataclasses.replace(SYNC, maximum=2.0)
    assert 2.0 == after_failure(TransientError("x"), 3, 0, short, rand=TOP).delay


def test_jitter_spreads_delays_between_half_and_full() -> None:
    """Many files failing together do not retry in lock-step: the delay is drawn from [base/2, base]."""
    assert 4.0 == after_failure(TransientError("x"), 4, 0, SERVICE, rand=lambda: 0.0).delay
    assert 8.0 == after_failure(TransientError("x"), 4, 0, SERVICE, rand=TOP).delay


@pytest.mark.parametrize(
    ("attempt", "rules", "expected"),
    [
        (1, SERVICE, 1.0),
        (4, SERVICE, 8.0),
        (5, SERVICE, None),  # part_retries = 4: the fifth failure gives the file up
        (4, dataclasses.replace(SERVICE, initial=10.0, part_retries=9), PART_RETRY_MAX_SECONDS),
        (3, dataclasses.replace(SERVICE, maximum=2.0), 2.0),
    ],
)
def test_part_retry_delay(attempt: int, rules: RetryRules, expected: float | None) -> None:
    """A part is resent part_retries times, waiting at most PART_RETRY_MAX_SECONDS (or retry_max_seconds)."""
    assert expected == part_retry_delay(attempt, rules, rand=TOP)
