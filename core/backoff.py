"""Retry spacing for the queues: how long a message or an outbox recipient waits before
its next attempt after a temporary failure."""

from __future__ import annotations

import random


def backoff(attempts: int, minimum: float, maximum: float) -> float:
    """Exponential backoff with ±25 % jitter, within ``[minimum, maximum]``."""
    base = min(maximum, minimum * 2 ** max(attempts - 1, 0))
    return max(minimum, min(maximum, base * random.uniform(0.75, 1.25)))
