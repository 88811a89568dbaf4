"""User commands. This module owns its registry; ``load_plugins`` merges it into the app's."""

from registers.cli import CommandRegistry

cli = CommandRegistry()


@cli.register(name="create-user", description="Create a user")
def create_user(username: str, admin: bool = False) -> str:
    role = "admin" if admin else "user"
    return f"Created {role} {username}"
