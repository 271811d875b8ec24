"""Makes the *server processes* of ``mailpulse serve`` fail to start, the parent not.

Put on PYTHONPATH with MAILPULSE_TEST_FAIL_CHILD set to ``app`` (building the app raises) or
``lifespan`` (the app's start-up raises). The first process that imports this file is the
parent: it records its pid, and every process it starts inherits that and sees it is a child.
"""

import os

_mode = os.environ.get("MAILPULSE_TEST_FAIL_CHILD")
_parent = os.environ.setdefault("MAILPULSE_TEST_PARENT_PID", str(os.getpid()))

if _mode and _parent != str(os.getpid()):

    def _boom(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("simulated start-up failure of a server process")

    if _mode == "app":
        import mailpulse.runtime

        mailpulse.runtime.build_runtime = _boom  # type: ignore[assignment]
    elif _mode == "lifespan":
        import mailpulse.store.db

        mailpulse.store.db.Database.start = _boom  # type: ignore[method-assign]
