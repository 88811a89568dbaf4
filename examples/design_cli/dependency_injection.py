# --- defined for the snippet below (the design document leaves it implicit) ---
class DatabaseService:
    """A stand-in database service: remembers its URL, reports what it inserts."""

    def __init__(self, url: str) -> None:
        self.url = url

    def insert_fixtures(self, count: int) -> None:
        print(f"Inserted {count} fixtures into {self.url}")


# --- snippet, as written in the design document ---
from registers.cli import CommandRegistry, DIContainer, Dispatcher, build_parser

registry = CommandRegistry()
container = DIContainer()

container.register(DatabaseService, DatabaseService(url="sqlite:///app.db"))


@registry.register(name="seed", description="Seed the database")
def seed(count: int, db: DatabaseService) -> str:
    db.insert_fixtures(count)
    return f"Seeded {count} records."


parser = build_parser(registry, container)
dispatcher = Dispatcher(registry, container)
args = parser.parse_args()

if args.command:
    cli_args = {k: v for k, v in vars(args).items() if k != "command"}
    dispatcher.dispatch(args.command, cli_args)
