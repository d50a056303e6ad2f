"""Tests for qsyncd.prefixes: parsing ``[[watch]] prefix`` templates and filling them in per file."""

from __future__ import annotations

import pytest

from qsyncd import prefixes


@pytest.mark.parametrize(
    ("template", "resolved"),
    [
        ("", ""),
        ("backup/", "backup/"),
        ("{hostname}/drop/", "cam1/drop/"),
        ("{hostname}/{mtime:%Y/%m/%d}/", "cam1/{mtime:%Y/%m/%d}/"),
        ("x/{mtime:%Y}/{mtime:%m-%d %H%%}", "x/{mtime:%Y}/{mtime:%m-%d %H%%}"),
    ],
)
def test_resolve_replaces_hostname_and_keeps_mtime(template: str, resolved: str) -> None:
    assert resolved == prefixes.resolve(template, lambda: "cam1")


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{host}/", "unknown field {host}; allowed: {hostname} and {mtime:FORMAT}"),
        ("{mtime}/", "{mtime} needs a format"),
        ("{mtime:}/", "needs a format"),
        ("{hostname:x}/", "{hostname} takes no format"),
        ("{mtime:%Y/%Q}/", "%Q is not a strftime code qsyncd allows"),
        ("{mtime:%Y%}/", 'a lone "%" at the end'),
        ("{mtime:%n}/", "%n is not a strftime code"),
        ("a{b", "unmatched brace"),
        ("a}b", "unmatched brace"),
        ("{{literal}}", "unmatched brace"),
    ],
)
def test_resolve_rejects_what_is_not_allowed(template: str, message: str) -> None:
    with pytest.raises(prefixes.PrefixError) as info:
        prefixes.resolve(template, lambda: "cam1")
    assert message in str(info.value)


def test_fixed_part_is_the_text_before_the_first_field() -> None:
    assert "cam/" == prefixes.fixed_part("cam/{mtime:%Y}/{mtime:%m}/")
    assert "cam/2024-" == prefixes.fixed_part("cam/2024-{mtime:%m}/")
    assert "plain/" == prefixes.fixed_part("plain/")
    assert not prefixes.is_template("plain/")
    assert prefixes.is_template("{mtime:%Y}/")


def test_expand_fills_every_field_from_one_mtime() -> None:
    assert "2001/2001-09-09/" == prefixes.expand("{mtime:%Y}/{mtime:%F}/", 1_000_000_000.9)
