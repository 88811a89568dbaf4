"""``load_plugins``: import every command module of a package.

Importing a module runs its ``@cli.register(...)`` decorators. A plugin module may instead
own a module-level :class:`CommandRegistry`; every such registry found is merged into the
application's registry, so plugins need not import the application.
"""

from __future__ import annotations

from .exceptions import PluginLoadError
from .registry import CommandRegistry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["load_plugins"]


def _import(name: str) -> ModuleType:
    import importlib

    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise PluginLoadError(f"Plugin package '{name}' not found.", module=name) from exc
        raise _failed(name, exc) from exc
    except Exception as exc:
        raise _failed(name, exc) from exc


def _failed(name: str, exc: BaseException) -> PluginLoadError:
    return PluginLoadError(
        f"Failed to load plugin module '{name}': {type(exc).__name__}: {exc}", module=name
    )


def _walk(package: ModuleType) -> list[ModuleType]:
    import pkgutil

    found: list[ModuleType] = []
    children = sorted(pkgutil.iter_modules(package.__path__), key=lambda info: info.name)
    for info in children:
        if info.name.startswith("_"):
            continue
        module = _import(f"{package.__name__}.{info.name}")
        found.append(module)
        if info.ispkg:
            found.extend(_walk(module))
    return found


def _merge_owned(module: ModuleType, registry: CommandRegistry, merged: set[int]) -> None:
    for value in list(vars(module).values()):
        if not isinstance(value, CommandRegistry):
            continue
        # a group is merged with its root registry, in its place, never at the top level
        owned = value.root
        if owned is registry.root or id(owned) in merged:
            continue
        merged.add(id(owned))
        try:
            registry.merge(owned)
        except Exception as exc:
            raise _failed(module.__name__, exc) from exc


def load_plugins(package: str, registry: CommandRegistry) -> list[ModuleType]:
    """Import every module of ``package`` whose name does not start with ``_``.

    Modules are imported in name order, sub-packages recursively. Module-level
    ``CommandRegistry`` objects other than ``registry`` are merged into ``registry``.

    Args:
        package: A dotted package name, e.g. ``"app.commands"``.
        registry: The application's registry.

    Returns:
        The imported modules, in import order.

    Raises:
        PluginLoadError: The package does not exist, or a module raised while importing
            (the original exception is chained as ``__cause__``).
    """
    root = _import(package)
    modules = _walk(root) if hasattr(root, "__path__") else [root]
    merged: set[int] = set()
    for module in (root, *modules):
        _merge_owned(module, registry, merged)
    return modules
