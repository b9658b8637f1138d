"""Tenants' own notice templates (issue 13, item 3): 115 injection payloads, each refused or
rendered harmlessly within 2 s, none reaching a secret in the process, a file or Python's
internals; errors with their line; the default notice whenever a template fails."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from branding import custom_templates
from branding.custom_templates import (
    SAMPLE,
    TemplateProblem,
    check_template,
    render_limited,
    render_or_default,
)
from tests.branding.template_payloads import PAYLOADS

SECRET = "S3CRET-" + "9f1c2e"
# what an escape would show: a planted secret, a file's content, Python's internals
LEAKS = (SECRET, "root:x:0:0", "<class", "__globals__", "<module", "<built-in", "environ(")


@pytest.fixture(autouse=True)
def worker() -> Iterator[None]:
    os.environ["SEALMAIL_TEMPLATE_TEST_SECRET"] = SECRET  # in this process, never in a template
    yield
    os.environ.pop("SEALMAIL_TEMPLATE_TEST_SECRET", None)
    custom_templates.close_worker()  # the rendering process ends with the test


def test_a_template_renders_the_documented_variables() -> None:
    out = render_limited(
        "<a href='{{ link }}'>{{ read_button_text }}</a> {{ reference }}{% if show_subject %}"
        " {{ subject }}{% endif %}",
        {**SAMPLE, "subject": "<b>Q3</b>"},
        html=True,
    )
    assert "https://secure.example.com/m/EXAMPLE-LINK" in out and "7KQ4-M2XD-9TB" in out
    assert "&lt;b&gt;Q3&lt;/b&gt;" in out  # autoescaped in HTML
    assert render_limited("{{ subject }}", {"subject": "<b>"}, html=False) == "<b>"
    # only the documented names exist; anything else handed in is dropped
    with pytest.raises(TemplateProblem, match="undefined"):
        render_limited("{{ tenant_id }}", {**SAMPLE, "tenant_id": "t_1"}, html=False)


def test_errors_come_with_their_line() -> None:
    problem = check_template("line one\n{{ link }}\n{% if %}\n", html=True)
    assert problem is not None and problem.line == 3 and "syntax" in problem.message
    problem = check_template("a\nb\n{{ nope }}\n{{ link }}", html=True)
    assert problem is not None and problem.line == 3 and "nope" in problem.message
    problem = check_template("<p>no link here</p>", html=True)
    assert problem is not None and "link" in problem.message
    assert check_template("<a href='{{ link }}'>Open</a>", html=True) is None


@pytest.mark.timeout(240)
def test_the_injection_corpus() -> None:
    assert len(PAYLOADS) >= 100
    slowest = 0.0
    outcomes = {"refused": 0, "harmless": 0}
    for payload in PAYLOADS:
        for html in (True, False):
            started = time.monotonic()
            try:
                out = render_limited(payload, SAMPLE, html=html)
            except TemplateProblem as problem:
                outcomes["refused"] += 1
                assert problem.message, payload
                # the reason may name what was refused; it never carries what lies behind it
                for leak in (SECRET, "root:x:0:0", "<class", "<module"):
                    assert leak not in problem.message, (payload, problem.message)
                out = ""
            else:
                outcomes["harmless"] += 1
            took = time.monotonic() - started
            slowest = max(slowest, took)
            assert took < 2.0, f"{payload!r} took {took:.2f} s"
            for leak in LEAKS:
                assert leak not in out, f"{payload!r} (html={html}) leaked {leak!r}: {out[:200]}"
            assert len(out) <= 256 * 1024 + 1000, payload
            # the send path: the default notice, never the payload's result
            sent = render_or_default(payload, SAMPLE, html=html, default="DEFAULT NOTICE")
            for leak in LEAKS:
                assert leak not in sent, payload
    print(f"\n{len(PAYLOADS)} payloads x 2: {outcomes}, slowest {slowest:.2f} s")
    assert outcomes["refused"] > len(PAYLOADS)  # most are refused outright


def test_a_stopped_template_falls_back_and_the_renderer_recovers() -> None:
    loop = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    started = time.monotonic()
    assert render_or_default(loop, SAMPLE, html=True, default="DEFAULT") == "DEFAULT"
    assert time.monotonic() - started < 2.0
    with pytest.raises(TemplateProblem, match="longer than"):
        render_limited(loop, SAMPLE, html=False)
    # a new process took over: the next template renders at once
    started = time.monotonic()
    assert render_limited("{{ recipient }}", SAMPLE, html=False) == "bob@client.example"
    assert time.monotonic() - started < 2.0
