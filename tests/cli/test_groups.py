"""C10: command groups."""

from __future__ import annotations

from registers.cli import CommandRegistry, DIContainer, MiddlewareChain


class Cluster:
    name = "eu-1"


def _app() -> CommandRegistry:
    cli = CommandRegistry(prog="app")
    deploy = cli.group("deploy", description="Deploy things", ops=["-d"])

    @deploy.register(ops=["svc"], description="Deploy a service")
    def service(name: str, cluster: Cluster, replicas: int = 1) -> str:
        return f"{name} x{replicas} on {cluster.name}"

    db = deploy.group("db", description="Database deployments")

    @db.register()
    def migrate(target: str = "head") -> str:
        return f"migrated to {target}"

    return cli


def _container() -> DIContainer:
    container = DIContainer()
    container.register(Cluster, Cluster())
    return container


def test_group_command_runs_with_di_and_aliases_at_every_level() -> None:
    cli = _app()
    for argv in (["deploy", "service", "api"], ["-d", "svc", "api"], ["--deploy", "--svc", "api"]):
        result = cli.invoke([*argv, "--replicas", "2"], container=_container())
        assert result.stdout == "api x2 on eu-1\n", result.stderr


def test_groups_nest() -> None:
    assert _app().invoke(["deploy", "db", "migrate", "--target", "v2"]).stdout == (
        "migrated to v2\n"
    )


def test_group_without_subcommand_shows_its_help_and_exits_2() -> None:
    result = _app().invoke(["deploy"])
    assert result.exit_code == 2
    assert "usage: app deploy" in result.stderr
    assert "service, svc  Deploy a service" in result.stderr


def test_unknown_subcommand_suggests_within_the_group() -> None:
    result = _app().invoke(["deploy", "servce", "x"])
    assert result.exit_code == 2
    assert result.stderr == (
        "Unknown command 'deploy servce'. Did you mean 'deploy service'?\n"
        "Try 'app deploy --help' for help.\n"
    )


def test_help_lists_groups() -> None:
    out = _app().invoke(["--help"]).stdout
    assert "deploy, -d  Deploy things" in out


def test_middleware_sees_the_full_path() -> None:
    seen: list[str] = []
    chain = MiddlewareChain()
    chain.add_pre(lambda command, kwargs: seen.append(command))
    _app().invoke(["deploy", "db", "migrate"], middleware=chain)
    assert seen == ["deploy db migrate"]


def test_lookup_by_path_and_len() -> None:
    cli = _app()
    assert cli.get("deploy svc").name == "service"
    assert set(cli.all()) == {"deploy service", "deploy db migrate"}
    assert len(cli) == 2


def test_group_and_command_names_collide() -> None:
    import pytest

    from registers.cli import DuplicateCommandError

    cli = _app()
    with pytest.raises(DuplicateCommandError):
        cli.register("deploy")(lambda: None)
