"""The API fuzzed from its own OpenAPI document against the running product: schemathesis
generates requests for every operation a tenant's admin API key may call (a few examples
each, bounded in time) and each answer must be no server error, carry a documented status
code, and match the documented response schema. A finding is fixed in the product or in its
schema, never here."""

from __future__ import annotations

import itertools
import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import Product

MAX_EXAMPLES = 10  # per operation with the admin key
FEW_EXAMPLES = 3  # with the compliance and the sender key: mostly their refusals
BUDGET = 60.0  # seconds for the whole run; operations past it are reported, not skipped
# other doors than a tenant's API key: the desk agent's key (rate-limited per address) and
# the billing system's signed webhook; their refusals are tested where they are built
NOT_FUZZED = {"/api/v1/support/verify", "/billing/webhook"}
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


def _words(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return " | ".join(_words(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {str(exc).strip()}"


def _setup(base: str, admin_key: str) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """An admin key (from the CLI), a compliance and a sender key made through the API, and
    ids that exist (a user, a message sealed for the portal) for the fuzz to act on too."""
    admin = {"Authorization": f"Bearer {admin_key}", "Content-Type": "application/json"}
    keys = {"admin": admin}

    def call(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(base + path, data=data, headers=admin)
        with urllib.request.urlopen(request, timeout=20) as r:
            return dict(json.load(r))

    sam = call("/api/v1/users", {"email": "sam@fuzz.example", "role": "sender"})["id"]
    for scope in ("compliance", "sender"):
        made = call(
            "/api/v1/api-keys", {"label": scope, "scope": scope, "owner": "sam@fuzz.example"}
        )
        keys[scope] = {"Authorization": f"Bearer {made['key']}"}
    note = {"from": "sam@fuzz.example", "to": "bob@example.org", "text": "hello", "expires": "7d"}
    message = call("/api/v1/messages", note)["id"]
    deadline = time.monotonic() + 30
    while call(f"/api/v1/messages/{message}")["state"] == "received":  # the pipeline seals it
        assert time.monotonic() < deadline, "the composed message was not processed"
        time.sleep(0.2)
    return keys, {"user_id": sam, "message_id": message}


def _fuzzer(
    op: Any,
    base: str,
    auth: dict[str, str],
    examples: int,
    statuses: dict[int, int],
    known: dict[str, str],
) -> Callable[[], None]:
    """A Hypothesis test of one operation: positive and negative cases, and positive cases
    on the ids that exist, checked."""
    cases = op.as_strategy() | op.as_strategy(GenerationMode.NEGATIVE)
    real = {name: value for name, value in known.items() if f"{{{name}}}" in op.path}
    if real:
        cases = cases | op.as_strategy(path_parameters=real)

    @given(case=cases)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call_and_validate(base_url=base, headers=auth, checks=CHECKS, timeout=20)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    return run


@pytest.mark.e2e
@pytest.mark.timeout(150)
def test_the_api_holds_to_its_document(product: Product) -> None:
    product.start()
    tenant = product.create_tenant("Fuzz", "fuzz.example")
    keys, known = _setup(product.portal_url, tenant["api_key"])
    schema = schemathesis.openapi.from_url(f"{product.portal_url}/api/v1/openapi.json")
    failures: list[str] = []
    tried: list[str] = []
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + BUDGET
    for scope, result in itertools.product(
        ("admin", "compliance", "sender"), list(schema.get_all_operations())
    ):
        op = result.ok()
        if op.path in NOT_FUZZED:
            continue
        if time.monotonic() > deadline:
            failures.append(f"{op.label}: not reached within {BUDGET:.0f} s")
            continue
        tried.append(op.label)
        examples = MAX_EXAMPLES if scope == "admin" else FEW_EXAMPLES

        run = _fuzzer(op, product.portal_url, keys[scope], examples, statuses, known)
        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # every operation's, not the first only
            failures.append(f"{op.label} ({scope} key): {_words(exc)[:1500]}")
    # the partner's operations with a partner key, on a tenant of its own too
    product.cli("partner", "create", "Fuzz MSP")
    made = product.cli("partner", "key", "add", "Fuzz MSP", "fuzz", "--json").stdout
    partner = {"Authorization": f"Bearer {json.loads(made)['key']}"}
    request = urllib.request.Request(
        product.portal_url + "/api/v1/tenants",
        data=json.dumps({"name": "Fuzz Tenant", "domains": ["fuzz-tenant.example"]}).encode(),
        headers={**partner, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=20) as r:
        own = {"tenant_id": json.load(r)["id"]}
    for result in schema.get_all_operations():
        op = result.ok()
        if not op.path.startswith("/api/v1/tenants"):
            continue
        tried.append(f"{op.label} (partner key)")
        run = _fuzzer(op, product.portal_url, partner, MAX_EXAMPLES, statuses, own)
        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{op.label} (partner key): {_words(exc)[:1500]}")
    assert len(tried) >= 75, tried
    assert sum(statuses.values()) >= 2 * len(tried), statuses  # requests were really made
    assert sum(n for code, n in statuses.items() if code < 300) >= len(tried) // 3, statuses
    assert statuses.get(403), statuses  # the narrower keys were refused somewhere
    assert not failures, "\n\n".join(failures) + "\n\n" + product.logs()[-3000:]
