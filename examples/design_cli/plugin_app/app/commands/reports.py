"""Report commands."""

from registers.cli import CommandRegistry

cli = CommandRegistry()


@cli.register(name="export", description="Export a report", ops=["-e"])
def export(report: str, format: str = "csv") -> dict[str, str]:
    return {"report": report, "format": format}
