# --- defined for the snippet below (the design document leaves them implicit) ---
from typing import Optional

from registers.cli import CommandRegistry

cli = CommandRegistry()
# --- snippet, as written in the design document ---


@cli.register(name="create-report", description="Generate a report")
def create_report(
    title: str,           # required positional
    pages: int,           # required positional, coerced to int
    verbose: bool = False,  # optional --verbose flag
    output: Optional[str] = None,  # optional --output path
) -> str:
    ...
# --- end of snippet ---


if __name__ == "__main__":
    cli.run()
