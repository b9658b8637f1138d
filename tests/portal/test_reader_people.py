"""Names and dates in the conversation's sentences (pure functions)."""

from __future__ import annotations

from portal.reader.people import full_name, join_names, sent_sentence, short_name, spoken_date


def test_sentences_read_like_people_write() -> None:
    s = sent_sentence(
        "Alice Smith <alice@acme.example>",
        "Wed, 03 Dec 2025 14:05:00 +0000",
        ["bob@client.example", "Carol Jones <carol@x.example>"],
        ["Dan <dan@x.example>"],
        me="BOB@client.example",
        mine=False,
    )
    assert s == (
        "Alice Smith sent this on 3 December 2025 at 14:05 UTC to you and Carol Jones, "
        "with a copy to Dan."
    )
    assert sent_sentence("bob@client.example", "", ["a@x"], [], me="bob@x", mine=True) == (
        "You sent this to a@x."
    )
    assert join_names(["a", "you", "b"]) == "you, a and b"
    assert join_names([f"p{i}" for i in range(20)]).endswith("and 13 others")
    assert spoken_date("not a date") == "not a date"
    assert spoken_date("Tue, 04 Mar 2025 12:15:00 +0200") == "4 March 2025 at 10:15 UTC"


def test_an_address_that_is_not_one_is_cut_short_not_a_crash() -> None:
    huge = '"test" <test@test.com>, ' + "date>2017-08-20T10:08:28.617</pr" * 3000
    assert len(short_name(huge)) < 200 and short_name(huge).endswith("…")
    assert len(full_name(huge)) < 200
