"""``remote/s3_list.py``'s choice of API, against scripted replies: a store that refuses ListObjectsV2 or
answers it as V1 is listed with V1 from where it stands (SeaweedFS, which has V2: tests/s3/test_s3_remote.py)."""

from __future__ import annotations

from typing import Any

import pytest

from qsyncd.errors import BadRequest, TransientError
from qsyncd.remote.base import ObjectInfo
from qsyncd.remote.s3_list import S3Listing

MD5 = "0" * 32


def page(*keys: str, truncated: bool = False, token: str = "") -> dict[str, Any]:
    reply: dict[str, Any] = {"Contents": [{"Key": k, "Size": 1, "ETag": f'"{MD5}"'} for k in keys]}
    reply["IsTruncated"] = truncated
    if token:
        reply["NextContinuationToken"] = token
    return reply


class Script:
    """A stand-in for ``_Botocore.call``: answers from a list, records (operation, marker or token)."""

    def __init__(self, *answers: dict[str, Any] | Exception) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str, str]] = []

    def __call__(self, operation: str, key: str, **params: Any) -> dict[str, Any]:
        self.sent.append((operation, str(params.get("Marker", params.get("ContinuationToken", "")))))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def no_head(key: str) -> ObjectInfo | None:
    raise AssertionError(f"no multipart entry here: {key}")


def keys(listing: S3Listing) -> list[str]:
    return [o.key for o in listing.objects("p/", "", 2, no_head)]


def test_v2_goes_on_with_the_continuation_token() -> None:
    call = Script(page("p/a", "p/b", truncated=True, token="t1"), page("p/c"))
    assert ["p/a", "p/b", "p/c"] == keys(S3Listing(call))
    assert [("ListObjectsV2", ""), ("ListObjectsV2", "t1")] == call.sent


def test_a_store_that_refuses_v2_is_listed_with_v1_from_then_on() -> None:
    refused = BadRequest("not implemented", status=501, code="NotImplemented", operation="ListObjectsV2")
    call = Script(refused, page("p/a", "p/b", truncated=True), page("p/c"), page("p/d"))
    listing = S3Listing(call)
    assert ["p/a", "p/b", "p/c"] == keys(listing)
    assert ["p/d"] == keys(listing)  # V2 is not asked again
    assert [("ListObjectsV2", ""), ("ListObjects", ""), ("ListObjects", "p/b"), ("ListObjects", "")] == call.sent


def test_a_store_that_answers_v2_as_v1_goes_on_with_v1_after_the_page() -> None:
    call = Script(page("p/a", "p/b", truncated=True), page("p/b", "p/c"))  # no token; V1 marker inclusive
    assert ["p/a", "p/b", "p/c"] == keys(S3Listing(call))
    assert [("ListObjectsV2", ""), ("ListObjects", "p/b")] == call.sent


@pytest.mark.parametrize(
    "replies",
    [
        pytest.param([page("p/a", truncated=True, token="t"), page(truncated=True, token="t")], id="v2-same-token"),
        pytest.param([page("p/a", truncated=True), page(truncated=True)], id="v1-empty-truncated-page"),
    ],
)
def test_a_listing_that_cannot_go_on_raises_rather_than_ending_short(replies: list[dict[str, Any]]) -> None:
    with pytest.raises(TransientError) as err:
        keys(S3Listing(Script(*replies)))
    assert "listing_stalled" == err.value.code


def test_other_errors_of_the_first_v2_page_are_raised() -> None:
    with pytest.raises(BadRequest):
        keys(S3Listing(Script(BadRequest("bad", status=400, code="InvalidArgument", operation="ListObjectsV2"))))
