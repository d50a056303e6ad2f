"""Unit tests of qsyncd.emulator.signing: the four reference vectors and the tolerated variants."""

from __future__ import annotations

from qsyncd.emulator import signing

KEY = "ENV_SECRET_ACCESS_KEY"
D = "Mon, 01 Jan 0001 00:00:00 GMT"
QUERY = "acl&upload_id=fde133b5f6d932cd9c79bac3c7318da1&part_number=0&other=ignored"
HEADERS = {"Date": D, "X-QS-Test-2": "Test 2", "X-QS-Test-1": "Test 1"}


def test_vector_1_header_signature() -> None:
    """Vector 1: GET / with two x-qs headers and three sub-resources."""
    assert "bvglZF9iMOv1RaCTxPYWxexmt1UN2m5WKngYnhDEp2c=" == signing.header_signature(KEY, "GET", "/", QUERY, HEADERS)


def test_vector_1_string_to_sign() -> None:
    """The string to sign of vector 1 is assembled exactly as the reference shows."""
    expected = (
        f"GET\n\n\n{D}\nx-qs-test-1:Test 1\nx-qs-test-2:Test 2\n"
        "/?acl&part_number=0&upload_id=fde133b5f6d932cd9c79bac3c7318da1"
    )
    assert expected == signing.request_string_to_sign("GET", "/", QUERY, HEADERS)


def test_vector_2_x_qs_date_empties_date_line() -> None:
    """Vector 2: with X-QS-Date the Date line is empty and x-qs-date is a canonical header."""
    headers = dict(HEADERS, **{"X-QS-Date": D})
    assert "qkY+tOMdqfDAVv+ZBtlWeEBxlbyIKaQmj5lQlylENzo=" == signing.header_signature(KEY, "GET", "/", QUERY, headers)


def test_vector_3_encoded_path() -> None:
    """Vector 3: the percent-encoded path is signed as it is on the wire."""
    sig = signing.header_signature(KEY, "GET", "/bucket-name/%E4%B8%AD%E6%96%87", "", {"Date": D})
    assert "XsTXX50kzqBf92zLG1aIUIJmZ0hqIHoaHgkumwnV3fs=" == sig


def test_vector_4_query_signature() -> None:
    """Vector 4: the query signature of vector 1 with expires=3600."""
    assert "GRL3p3NOgHR9CQygASvyo344vdnO1hFke6ZvQ5mDVHM=" == signing.query_signature(
        KEY, "GET", "/", QUERY, HEADERS, 3600
    )


def test_empty_value_sub_resource_equals_bare() -> None:
    """Go's ``?uploads=`` canonicalises like Python's bare ``?uploads``."""
    assert signing.canonical_resource("/b/k", "uploads") == signing.canonical_resource("/b/k", "uploads=")
    assert "/b/k?uploads" == signing.canonical_resource("/b/k", "uploads=")


def test_non_sub_resources_are_not_signed() -> None:
    """prefix, limit, marker and friends stay out of the canonical resource."""
    assert "/b" == signing.canonical_resource("/b", "prefix=a%2F&limit=10&marker=x&delimiter=/")


def test_decoded_candidate_for_response_params() -> None:
    """response-* values yield an encoded (Python) and a decoded (Go) candidate."""
    got = list(signing.candidate_resources("/b/k", "response-content-type=text%2Fplain"))
    assert ["/b/k?response-content-type=text%2Fplain", "/b/k?response-content-type=text/plain"] == got


def test_canonical_headers_lowercase_sorted_stripped() -> None:
    """x-qs-* headers are lower-cased, stripped and sorted; others are ignored."""
    block = signing.canonical_headers([("X-QS-B", " 2 "), ("x-qs-a", "1"), ("Content-Type", "t")])
    assert "x-qs-a:1\nx-qs-b:2\n" == block


def test_wrong_key_gives_other_signature() -> None:
    """A different secret gives a different signature (the check is not vacuous)."""
    assert signing.header_signature("other", "GET", "/", QUERY, HEADERS) != signing.header_signature(
        KEY, "GET", "/", QUERY, HEADERS
    )
