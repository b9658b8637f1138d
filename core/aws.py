"""boto3 sessions that share one botocore data loader.

Every S3 and KMS client parses botocore's service descriptions and endpoint rules (several
MB of JSON each time). A process with an S3 archive and a KMS root used to parse the shared
ones twice, one session per client; sessions made here share the loader and its cache, so
they are parsed once (about 7 MB less peak memory for ``sealmail archive verify``). Each
session still resolves its own credentials from the standard AWS chain.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_loader: Any = None


def new_session() -> Any:
    """A fresh ``boto3.session.Session`` using the process's shared data loader."""
    global _loader
    import boto3
    import botocore.session

    with _lock:
        core = botocore.session.get_session()
        if _loader is None:
            _loader = core.get_component("data_loader")
        else:
            core.register_component("data_loader", _loader)
        return boto3.session.Session(botocore_session=core)
