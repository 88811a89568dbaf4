# --- defined for the snippet below (the design document leaves them implicit) ---
import sys
from typing import Any


class _AuditLog:
    """A stand-in audit log writing one line per finished command to stdout."""

    def write(self, command: str, result: Any) -> None:
        print(f"audit: {command} -> {result!r}", file=sys.stdout)


audit_log = _AuditLog()

# --- snippet, as written in the design document ---
from registers.cli import CommandRegistry, MiddlewareChain, logging_middleware_pre, logging_middleware_post

cli = CommandRegistry()
chain = MiddlewareChain()

chain.add_pre(logging_middleware_pre)    # built-in: logs command + args, starts timer
chain.add_post(logging_middleware_post)  # built-in: logs completion + elapsed time

# Custom hook
def audit_hook(command: str, result: Any) -> None:
    audit_log.write(command, result)

chain.add_post(audit_hook)

cli.run(middleware=chain)
