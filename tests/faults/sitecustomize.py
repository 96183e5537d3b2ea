"""A fault hook only tests can set: Python imports this module at start-up in the `portvakt serve`
processes that a test starts with this folder on PYTHONPATH.

With PORTVAKT_TEST_DIE_BEFORE_CODE naming a file, the first process whose login is about to write
its authorization code creates that file and SIGKILLs itself: it dies between the upstream's
answer and the code, every time, instead of a test hoping that a kill lands there. Creating the
file is atomic (O_EXCL), so of several instances exactly one dies.
"""

from __future__ import annotations

import os
import signal
from typing import Any

_marker = os.environ.get("PORTVAKT_TEST_DIE_BEFORE_CODE")

if _marker:
    from gateway.oidc.codes import AuthorizationCodes

    _issue = AuthorizationCodes.issue

    async def _die_before_the_first_code(self: AuthorizationCodes, *args: Any, **kw: Any) -> Any:
        try:
            os.close(os.open(_marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return await _issue(self, *args, **kw)
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable: this process was killed")

    AuthorizationCodes.issue = _die_before_the_first_code  # type: ignore[method-assign]
