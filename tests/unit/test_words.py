"""Counted nouns are written out in the number they take, never as "day(s)"."""

from bot.domain.words import counted


def test_one_takes_the_singular_and_every_other_count_the_plural() -> None:
    assert counted(1, "day") == "1 day"
    assert [counted(n, "day") for n in (0, 2, 14)] == ["0 days", "2 days", "14 days"]


def test_an_irregular_plural_and_thousands() -> None:
    assert counted(1, "audit entry", "audit entries") == "1 audit entry"
    assert counted(1200, "audit entry", "audit entries") == "1,200 audit entries"
