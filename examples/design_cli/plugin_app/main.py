from registers.cli import CommandRegistry, load_plugins

cli = CommandRegistry()
load_plugins("app.commands", cli)  # auto-discovers app/commands/*.py

if __name__ == "__main__":
    cli.run()
