"""C5: the DI container."""

from __future__ import annotations

import threading

import pytest

from registers.cli import DependencyNotFoundError, DIContainer


class Base:
    pass


class Child(Base):
    pass


class Other:
    pass


def test_register_and_resolve_instance() -> None:
    container = DIContainer()
    instance = Base()
    container.register(Base, instance)
    assert container.resolve(Base) is instance
    assert container.has(Base)


def test_exact_type_wins_over_subclass() -> None:
    container = DIContainer()
    child, base = Child(), Base()
    container.register(Child, child)
    container.register(Base, base)
    assert container.resolve(Base) is base


def test_subclass_is_used_when_no_exact_match() -> None:
    container = DIContainer()
    child = Child()
    container.register(Child, child)
    assert container.resolve(Base) is child
    assert container.has(Base)


def test_unknown_type_raises() -> None:
    container = DIContainer()
    assert not container.has(Other)
    with pytest.raises(DependencyNotFoundError, match="Other"):
        container.resolve(Other)


def test_singleton_factory_is_called_once() -> None:
    calls: list[int] = []
    container = DIContainer()
    def make() -> Base:
        calls.append(1)
        return Base()

    container.register_factory(Base, make)
    assert container.resolve(Base) is container.resolve(Base)
    assert calls == [1]


def test_non_singleton_factory_is_called_every_time() -> None:
    container = DIContainer()
    container.register_factory(Base, Base, singleton=False)
    assert container.resolve(Base) is not container.resolve(Base)


def test_singleton_factory_is_built_once_across_threads() -> None:
    calls: list[int] = []
    barrier = threading.Barrier(8)

    def factory() -> Base:
        calls.append(1)
        return Base()

    container = DIContainer()
    container.register_factory(Base, factory)
    results: list[Base] = []

    def worker() -> None:
        barrier.wait()
        results.append(container.resolve(Base))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len({id(r) for r in results}) == 1


def test_factory_must_be_callable() -> None:
    with pytest.raises(TypeError):
        DIContainer().register_factory(Base, Base())  # type: ignore[arg-type]


def test_a_parametrized_generic_is_never_resolved() -> None:
    """``list[int]`` is not a class (Python 3.10 says it is a type): no subclass lookup."""
    container = DIContainer()
    container.register(Base, Base())
    assert not container.has(list[int])
    with pytest.raises(DependencyNotFoundError):
        container.resolve(list[int])
