"""Deployment commands."""

from registers.cli import CommandRegistry

cli = CommandRegistry()


@cli.register(name="deploy", description="Deploy to an environment")
def deploy(env: str, dry_run: bool = False) -> str:
    return f"Deploying to {env}{' (dry run)' if dry_run else ''}"
