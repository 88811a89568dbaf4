"""The Middleware snippet with one command registered, so its hooks have work to do.

The design document's snippet creates an empty registry; here a ``greet`` command is added
between creating ``cli`` and running it, and DEBUG logging is switched on so the built-in
hooks are visible on stderr.
"""

import logging
import sys
from typing import Any

from registers.cli import (
    CommandRegistry,
    MiddlewareChain,
    logging_middleware_post,
    logging_middleware_pre,
)

logging.basicConfig(level=logging.DEBUG, format="%(name)s %(levelname)s %(message)s")


class _AuditLog:
    def write(self, command: str, result: Any) -> None:
        print(f"audit: {command} -> {result!r}", file=sys.stdout)


audit_log = _AuditLog()

cli = CommandRegistry()
chain = MiddlewareChain()

chain.add_pre(logging_middleware_pre)    # built-in: logs command + args, starts timer
chain.add_post(logging_middleware_post)  # built-in: logs completion + elapsed time


# Custom hook
def audit_hook(command: str, result: Any) -> None:
    audit_log.write(command, result)


chain.add_post(audit_hook)


@cli.register(name="login", description="Log in")
def login(user: str, password: str) -> str:
    return f"Welcome, {user}!"


cli.run(middleware=chain)
