# --- defined for the snippet below (the design document leaves it implicit) ---
from registers.cli import CommandRegistry

cli = CommandRegistry()
# --- snippet, as written in the design document ---


@cli.register(
    ops=["-s", "--sync"],
    name="sync",
    description="Sync the database",
)
def sync(target: str) -> None:
    ...
# --- end of snippet ---


if __name__ == "__main__":
    cli.run()
