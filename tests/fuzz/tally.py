"""The long fuzz run: the property's check over many generated messages, counting failures by
kind instead of stopping at the first one (docs/FUZZING.md).

    PYTHONPATH=$PWD python -m tests.fuzz.tally --minutes 10 [--seed N]

Prints every distinct failure (exception type and the innermost project frame) with how many
examples hit it and the smallest input seen, then a summary line.
"""

from __future__ import annotations

import argparse
import collections
import logging
import time
import traceback
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hseed

from core.services import Services
from portal.app import create_app
from tests.fuzz.conftest import FuzzWorld, _setup, fuzz_dir, open_settings
from tests.fuzz.mime import Generated, messages
from tests.fuzz.test_pipeline_properties import check
from tests.portal.conftest import BASE

BATCH = 200  # examples per hypothesis run (each run a seed of its own)


def _where(exc: BaseException) -> str:
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if "/tests/" not in f.filename and "site-packages" not in f.filename
    ]
    project = [f for f in frames if "/lib/python3" not in f.filename]
    frame = (project or frames or [None])[-1]
    where = f"{Path(frame.filename).name}:{frame.lineno} {frame.name}" if frame else "?"
    return f"{type(exc).__name__} at {where}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # the portal logs each failure: counted here instead
    deadline = time.monotonic() + args.minutes * 60
    counts: collections.Counter[str] = collections.Counter()
    smallest: dict[str, tuple[bytes, str]] = {}
    total = [0]

    from starlette.testclient import TestClient

    with fuzz_dir() as tmp:
        cfg = open_settings(Path(tmp))
        services = Services.open(cfg)
        with TestClient(create_app(cfg, services), base_url=BASE) as client:
            world = FuzzWorld(client, services, cfg)
            _setup(world)

            def batch(number: int) -> None:
                @hseed(args.seed + number)
                @settings(
                    max_examples=BATCH,
                    deadline=None,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                )
                @given(generated=messages())
                def one(generated: Generated) -> None:
                    if time.monotonic() > deadline:
                        return
                    total[0] += 1
                    try:
                        check(world, generated)
                    except Exception as exc:  # noqa: BLE001 - counted, the run goes on
                        kind = _where(exc)
                        counts[kind] += 1
                        if kind not in smallest or len(generated.raw) < len(smallest[kind][0]):
                            smallest[kind] = (generated.raw, str(exc)[:200])

                one()

            started = time.monotonic()
            number = 0
            while time.monotonic() < deadline:
                batch(number)
                number += 1
            elapsed = time.monotonic() - started
            client.portal.call(services.close)
    for kind, n in counts.most_common():
        raw, message = smallest[kind]
        print(f"{n:7d}  {kind}\n         {message}\n         smallest input: {raw[:300]!r}")
    failed = sum(counts.values())
    print(
        f"seed {args.seed}: {total[0]} examples in {elapsed:.0f} s, "
        f"{failed} failed, {len(counts)} distinct failures"
    )


if __name__ == "__main__":
    main()
