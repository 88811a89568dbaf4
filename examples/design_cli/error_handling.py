# --- defined for the snippet below (the design document leaves it implicit) ---
from registers.cli import CommandRegistry

cli = CommandRegistry()
# --- snippet, as written in the design document ---
import functools, sys
from typing import Any, Callable


def handle_errors(func: Callable) -> Callable:
    @functools.wraps(func)
    def wrapper(*args, **kwargs) -> Any:
        try:
            return func(*args, **kwargs)
        except KeyboardInterrupt:
            print("\nInterrupted.", file=sys.stderr)
            sys.exit(0)
        except Exception as exc:
            print(f"Error: {exc}", file=sys.stderr)
            sys.exit(1)
    return wrapper


@cli.register(name="deploy", description="Deploy to an environment")
@handle_errors
def deploy(env: str) -> str:
    ...
# --- end of snippet ---


if __name__ == "__main__":
    cli.run()
