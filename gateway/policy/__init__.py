"""The pipeline's policy step: the engine in :mod:`core.policy`, the keys the tenant has for
each recipient, and the built-in triggers give one :class:`Verdict` per recipient."""

from gateway.policy.decide import Verdict, decide, record

__all__ = ["Verdict", "decide", "record"]
