"""Tenants' encryption policies (SPEC §4): the document, text extraction, detectors, the
rule interpreter and storage. Pure logic plus its own database access; the gateway's
pipeline and the portal's dry run both use it."""

from core.policy.engine import Decision, evaluate
from core.policy.extract import Limits, MessageFacts, extract_facts
from core.policy.model import Policy, Rule, dump_policy, parse_policy
from core.policy.source import PolicyError

__all__ = [
    "Decision",
    "Limits",
    "MessageFacts",
    "Policy",
    "PolicyError",
    "Rule",
    "dump_policy",
    "evaluate",
    "extract_facts",
    "parse_policy",
]
