"""Policy decisions per second, single core, next to a baseline measured in the same run.

    .venv/bin/python bench/policy_throughput.py [--messages 200] [--rounds 3] [--rcpts 3]
    .venv/bin/python bench/policy_throughput.py --kinds text     # plain-text messages only

Workload: a 20-rule policy (detectors with checksums, a dictionary, tenant patterns,
attachment name/type/extension, sender groups, recipient domains, headers, sizes) on a
mix of 10 KB to 2 MB messages: plain text, HTML, PDF attachments, zip attachments (text
files and incompressible data). Most mail matches no rule, so all 20 are evaluated: the
worst case per message.

System under test: ``extract_facts`` + ``evaluate`` for every message (what the pipeline
runs in its thread). Baseline: parsing the message with the stdlib ``email`` package and
decoding every part (what any content filter must do at least). Both pinned to one CPU.
Prints the median of ``--rounds`` rounds: messages/s, decisions/s (one per recipient),
MB/s, and the ratio SUT/baseline.
"""

# ruff: noqa: E501 - the policy document reads best one rule a line
from __future__ import annotations

import argparse
import email
import email.policy
import io
import os
import random
import statistics
import sys
import time
import zipfile
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.policy import evaluate, extract_facts, parse_policy  # noqa: E402

RULES = """
groups: {finance: ["*@finance.acme.example", cfo@acme.example], legal: ["*@legal.acme.example"]}
dictionaries:
  legal: {words: [privileged, attorney-client, "without prejudice", litigation hold], min_count: 2}
  hr: {words: [salary, disciplinary, "medical leave", termination], min_count: 3}
rules:
  - {name: r01 exe anywhere, when: {attachment_type: [exe, elf]}, action: reject}
  - {name: r02 double ext, when: {attachment_name: ["*.pdf.exe", "*.doc.js"]}, action: reject}
  - {name: r03 cards, when: {detector: credit_card, min_count: 2}, action: encrypt}
  - {name: r04 ssn, when: {detector: us_ssn}, action: encrypt, method: portal}
  - {name: r05 iban bulk, when: {detector: iban, min_count: 5}, action: hold}
  - {name: r06 nino, when: {detector: uk_nino, min_count: 2}, action: encrypt}
  - {name: r07 legal, when: {detector: "dictionary:legal"}, unless: {sender_group: legal}, action: encrypt}
  - {name: r08 hr, when: {detector: "dictionary:hr"}, action: encrypt}
  - {name: r09 address lists, when: {detector: email_addresses, min_count: 200}, action: hold}
  - {name: r10 project code, when: {text_matches: '(?i)\\bproject[- ](falcon|osprey|kestrel)\\b'}, action: encrypt}
  - {name: r11 internal ids, when: {text_matches: 'ACME-[0-9]{6}-[A-Z]{2}', min_count: 3}, action: encrypt}
  - {name: r12 classification, when: {header: {X-Classification: [secret, confidential]}}, action: encrypt}
  - {name: r13 lawyers, when: {recipient_domain: [lawfirm.example, "*.court.example"]}, action: require_tls}
  - {name: r14 board, when: {recipient: ["board@*", "directors@*"]}, action: encrypt, method: smime}
  - {name: r15 finance xlsx, when: {sender_group: finance, attachment_extension: [xlsx, csv]}, action: encrypt}
  - {name: r16 payroll, when: {attachment_name: ["payroll*", "*salar*"]}, action: encrypt}
  - {name: r17 huge archives, when: {attachment_type: [zip, rar, 7z], size_over: 20MB}, action: hold}
  - {name: r18 subject, when: {subject_contains: [confidential, "do not forward"]}, action: encrypt}
  - {name: r19 keys, when: {text_matches: '-----BEGIN (RSA |EC )?PRIVATE KEY-----'}, action: reject}
  - {name: r20 newsletters, when: {header: {Precedence: [bulk, list]}}, action: pass}
"""

WORDS = (
    "the quarterly report shows revenue growth in all regions and we expect the board to "
    "approve the budget for next year please review the attached figures before the meeting "
).split()


def prose(rng: random.Random, size: int) -> str:
    out, n = [], 0
    while n < size:
        w = rng.choice(WORDS)
        out.append(w)
        n += len(w) + 1
    return " ".join(out)


def pdf(text: str, pages: int) -> bytes:
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    kids = []
    font = 3
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    chunk = max(len(text) // pages, 1)
    for p in range(pages):
        lines = text[p * chunk : (p + 1) * chunk]
        ops = (
            b"BT /F1 10 Tf 50 780 Td 12 TL "
            + b" ".join(
                b"(" + lines[i : i + 90].encode() + b") '" for i in range(0, len(lines), 90)
            )
            + b" ET"
        )
        content_no = len(objects) + 1
        objects.append(b"<< /Length %d >>\nstream\n" % len(ops) + ops + b"\nendstream")
        page_no = len(objects) + 1
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R"
            b" /Resources << /Font << /F1 %d 0 R >> >> >>" % (content_no, font)
        )
        kids.append(page_no)
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def build(rng: random.Random, kind: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "alice@acme.example"
    msg["To"] = "bob@partner.example"
    msg["Subject"] = "Quarterly figures"
    if kind == "text":
        msg.set_content(prose(rng, rng.randint(10_000, 60_000)))
    elif kind == "html":
        msg.set_content(prose(rng, 2000))
        body = "".join(
            f"<p>{prose(rng, 400)}</p><table><tr><td>x</td></tr></table>"
            for _ in range(rng.randint(50, 400))
        )
        msg.add_alternative(f"<html><body>{body}</body></html>", subtype="html")
    elif kind == "pdf":
        msg.set_content(prose(rng, 1000))
        text = prose(rng, rng.randint(20_000, 200_000))
        msg.add_attachment(pdf(text, max(1, len(text) // 4000)), maintype="application",
                           subtype="pdf", filename="report.pdf")  # fmt: skip
        msg.add_attachment(rng.randbytes(rng.randint(100_000, 1_000_000)), maintype="image",
                           subtype="jpeg", filename="photo.jpg")  # fmt: skip
    else:
        msg.set_content(prose(rng, 1000))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for i in range(rng.randint(3, 20)):
                zf.writestr(f"docs/notes-{i}.txt", prose(rng, rng.randint(5_000, 100_000)))
            zf.writestr("data.bin", rng.randbytes(rng.randint(200_000, 1_200_000)))
        msg.add_attachment(buf.getvalue(), maintype="application", subtype="zip",
                           filename="bundle.zip")  # fmt: skip
    return msg.as_bytes()


def baseline(raw: bytes) -> None:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    for part in msg.walk():
        if not part.is_multipart():
            part.get_payload(decode=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rcpts", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--kinds",
        default="mix",
        help="mix (4 text : 2 html : 2 pdf : 2 zip) or a comma list of text,html,pdf,zip"
        " (text: the issue's plain-text measure)",
    )
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    rng = random.Random(args.seed)
    if args.kinds == "mix":
        kinds = ["text"] * 4 + ["html"] * 2 + ["pdf"] * 2 + ["zip"] * 2
    else:
        kinds = args.kinds.split(",")
        if not set(kinds) <= {"text", "html", "pdf", "zip"}:
            raise SystemExit(f"unknown kind in {args.kinds!r}")
    messages = [build(rng, kinds[i % len(kinds)]) for i in range(args.messages)]
    policy = parse_policy(RULES)
    assert len(policy.rules) == 20
    rcpts = [f"r{i}@partner.example" for i in range(args.rcpts)]
    total = sum(map(len, messages))
    sizes = sorted(map(len, messages))
    print(f"{len(messages)} messages, {total / 1e6:.1f} MB, sizes {sizes[0] / 1024:.0f} KB"
          f" .. {sizes[-1] / 1024:.0f} KB (median {sizes[len(sizes) // 2] / 1024:.0f} KB),"
          f" {args.rcpts} recipients each, 20 rules, 1 CPU")  # fmt: skip

    def sut() -> None:
        for raw in messages:
            facts = extract_facts(raw)
            evaluate(policy, facts, mail_from="alice@acme.example", recipients=rcpts,
                     tenant_domains=["acme.example"])  # fmt: skip

    def base() -> None:
        for raw in messages:
            baseline(raw)

    results: dict[str, list[float]] = {"baseline": [], "policy": []}
    for _ in range(args.rounds):
        for name, fn in (("baseline", base), ("policy", sut)):
            start = time.perf_counter()
            fn()
            results[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in results.items()}
    for name in ("baseline", "policy"):
        t = med[name]
        line = f"{name:<9} {len(messages) / t:8.1f} msg/s  {total / 1e6 / t:7.1f} MB/s"
        if name == "policy":
            line += f"  {len(messages) * args.rcpts / t:8.1f} decisions/s"
        print(line)
    print(f"ratio policy/baseline (msg/s): {med['baseline'] / med['policy']:.2f}")


if __name__ == "__main__":
    main()
