"""``DIContainer``: services by type, given to commands whose parameters ask for them."""

from __future__ import annotations

from .exceptions import DependencyNotFoundError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    T = TypeVar("T")

__all__ = ["DIContainer"]


class _Provider:
    __slots__ = ("factory", "instance", "lock", "ready", "singleton")

    def __init__(self, instance: Any = None, factory: Callable[[], Any] | None = None,
                 singleton: bool = True) -> None:
        self.instance = instance
        self.factory = factory
        self.singleton = singleton
        self.ready = factory is None
        self.lock: Any = None
        if factory is not None and singleton:
            import threading

            self.lock = threading.Lock()

    def get(self) -> Any:
        if self.ready:
            return self.instance
        assert self.factory is not None
        if not self.singleton:
            return self.factory()
        with self.lock:
            if not self.ready:
                self.instance = self.factory()
                self.ready = True
        return self.instance


def _is_subclass(registered: type, wanted: type) -> bool:
    """``issubclass`` that is false where Python refuses to answer.

    A ``typing.Protocol`` that is not ``@runtime_checkable`` (or has data members) raises
    ``TypeError``; such a service is found only when registered under that exact type.
    """
    try:
        return issubclass(registered, wanted)
    except TypeError:
        return False


class DIContainer:
    """Maps types to instances or factories.

    ``resolve(T)`` returns the provider registered for exactly ``T`` first, else the first
    registered subclass of ``T`` (registration order).

    Example:
        >>> class Clock: ...
        >>> container = DIContainer()
        >>> container.register(Clock, Clock())
        >>> container.has(Clock)
        True
    """

    __slots__ = ("_providers",)

    def __init__(self) -> None:
        self._providers: dict[type, _Provider] = {}

    def register(self, type_: type[T], instance: T) -> None:
        """Bind ``type_`` to an existing ``instance`` (replacing any earlier binding)."""
        self._providers[type_] = _Provider(instance=instance)

    def register_factory(
        self, type_: type[T], factory: Callable[[], T], *, singleton: bool = True
    ) -> None:
        """Bind ``type_`` to ``factory``.

        Args:
            type_: The type commands ask for.
            factory: Called with no arguments to build the service.
            singleton: Build once on first use (thread-safe) and reuse; ``False`` calls the
                factory on every resolution.
        """
        if not callable(factory):
            raise TypeError(f"factory for {type_!r} must be callable, got {factory!r}")
        self._providers[type_] = _Provider(factory=factory, singleton=singleton)

    def _find(self, type_: Any) -> _Provider | None:
        provider = self._providers.get(type_)
        if provider is not None:
            return provider
        # Only real classes have subclasses; a parametrized generic such as list[int] (which
        # Python 3.10 still reports as a type) never matches.
        if not isinstance(type_, type) or hasattr(type_, "__origin__"):
            return None
        for registered, candidate in self._providers.items():
            if _is_subclass(registered, type_):
                return candidate
        return None

    def copy(self) -> DIContainer:
        """A container with the same providers; registering in the copy leaves this one alone.

        Singleton factories already called share their instance; the others are called
        separately by each container.
        """
        copied = DIContainer()
        copied._providers = dict(self._providers)
        return copied

    def has(self, type_: Any) -> bool:
        """Whether ``type_`` (or a registered subclass of it) can be resolved."""
        return self._find(type_) is not None

    def resolve(self, type_: type[T]) -> T:
        """The service for ``type_``.

        Raises:
            DependencyNotFoundError: Nothing is registered for ``type_`` or a subclass.
        """
        provider = self._find(type_)
        if provider is None:
            name = getattr(type_, "__name__", repr(type_))
            raise DependencyNotFoundError(
                f"No service registered for type {name}.", type=type_
            )
        return provider.get()  # type: ignore[no-any-return]

    def __contains__(self, type_: object) -> bool:
        return self.has(type_)
