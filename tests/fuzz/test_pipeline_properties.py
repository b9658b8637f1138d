"""Properties over generated MIME: whatever bytes a sender's mailer produces, the pipeline
parses, decides, seals to the portal, notifies and archives without raising, and the
recipient's message page answers 200 showing the subject's marker (and the decoded text of
a valid encoded word in it).

``SEALMAIL_FUZZ_EXAMPLES`` sets the examples per property for the long run (docs/FUZZING.md).
"""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz.conftest import FuzzWorld, Outcome, examples
from tests.fuzz.mime import Generated, deep_message, messages

FUZZ = settings(
    max_examples=examples(1500),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)


def _page_text(body: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def check(world: FuzzWorld, generated: Generated) -> Outcome:
    out = world.through_pipeline(generated.raw)
    assert out.message.state == "processed", out.message.last_error
    assert out.message.disposition == "portal" and out.message.meta_object_id
    assert out.archived, "no archive entry"
    body = out.notification.get_body(("plain",))
    assert body is not None and "https://portal.test/m/" in body.get_content()
    page = world.client.get(f"/messages/{out.message_id}")
    assert page.status_code == 200, page.text[-2000:]
    shown = _page_text(page.text)
    if generated.marker is not None:
        assert generated.marker in shown
    if generated.subject_text is not None:
        assert " ".join(generated.subject_text.split()) in shown
    for download in ("download.eml", "download.pdf"):  # rebuilt from the sealed parts
        got = world.client.get(f"/messages/{out.message_id}/{download}")
        assert got.status_code == 200, (download, got.text[-2000:])
    if f"/messages/{out.message_id}/body" in page.text:  # an HTML body: its frame, the text view
        frame = world.client.get(f"/messages/{out.message_id}/body")
        assert frame.status_code == 200, frame.text[-2000:]
        text = world.client.get(f"/messages/{out.message_id}?view=text")
        assert text.status_code == 200, text.text[-2000:]
    return out


@pytest.mark.timeout(max(600, examples(1500)))  # the long run: about 0.1 s an example
@FUZZ
@given(generated=messages())
def test_any_message_reaches_the_portal_page(fuzz_world: FuzzWorld, generated: Generated) -> None:
    check(fuzz_world, generated)


@pytest.mark.timeout(120)
def test_deep_nesting_reaches_the_portal_page(fuzz_world: FuzzWorld) -> None:
    """The explicit deep case: 1,000 nested multiparts."""
    check(fuzz_world, Generated(deep_message(1000, "Zqdeep"), "Zqdeep", None))
