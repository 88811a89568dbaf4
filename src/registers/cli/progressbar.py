"""``progress(iterable, label=...)``: show how far a long loop has got, on stderr.

On a terminal it is one line redrawn in place (``label [#####-----]  50%  5/10``); when
stderr is not a terminal (a log file, CI) it writes a few plain lines instead: the start,
each quarter, and the end. It never writes to stdout, so ``app export > data.csv`` stays
clean.

Example:
    >>> from registers.cli import progress
    >>> total = 0
    >>> for n in progress(range(3), label="Adding"):  # doctest: +SKIP
    ...     total += n
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from types import TracebackType
    from typing import Any, Generic, NoReturn, TextIO, TypeVar

    T = TypeVar("T")
else:
    T = None

    class Generic:
        def __class_getitem__(cls, item: object) -> type:
            return cls

if not TYPE_CHECKING:  # typing stays unimported at run time
    def overload(func: object) -> object:
        return func
else:
    from typing import overload

__all__ = ["Progress", "progress"]

_WIDTH = 30


class Progress(Generic[T]):
    """A progress display; iterate over it, or call :meth:`advance` inside ``with``.

    Attributes:
        done: How many items are finished.
        length: How many there are in all (``None`` when unknown).
    """

    def __init__(
        self,
        iterable: Iterable[T] | None,
        *,
        label: str = "",
        length: int | None = None,
        file: TextIO | None = None,
    ) -> None:
        if length is None and iterable is not None:
            try:
                length = len(iterable)  # type: ignore[arg-type]
            except TypeError:
                length = None
        if length is not None and length < 0:
            raise ValueError(f"progress length must be >= 0, not {length}")
        self.iterable = iterable
        self.label = label
        self.length = length
        self.done = 0
        self.file = file if file is not None else sys.stderr
        self.terminal = _isatty(self.file)
        self._shown: object = None  # what was last drawn (a percentage or quarter)
        self._started = False
        self._finished = False

    # -- use ------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[T]:
        if self.iterable is None:
            raise TypeError("progress() was given no iterable; use advance() instead")
        self._start()
        try:
            for item in self.iterable:
                yield item
                self.advance()
        except BaseException:
            self.stop()
            raise
        self.finish()

    def __enter__(self) -> Progress[T]:
        self._start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if error is None:
            self.finish()
        else:
            self.stop()

    def advance(self, steps: int = 1) -> None:
        """Count ``steps`` more items as done and redraw if the display changed."""
        if not self._started:
            self._start()
        self.done += steps
        self._draw()

    def finish(self) -> None:
        """End the display (called by the loop and by ``with``; harmless twice)."""
        if self._finished:
            return
        self._finished = True
        if self.terminal:
            self._write("\r" + self._bar() + "\n")
        else:
            self._write(f"{self._prefix()}done, {self._count()}\n")

    def stop(self) -> None:
        """End the display without claiming completion (the work failed or was abandoned)."""
        if self._finished:
            return
        self._finished = True
        if self.terminal:
            self._write("\n")

    # -- drawing --------------------------------------------------------------------------

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        if self.terminal:
            self._draw()
        else:
            self._write(f"{self._prefix()}{self._count()}\n")
            self._shown = 0

    def _prefix(self) -> str:
        return f"{self.label}: " if self.label else ""

    def _count(self) -> str:
        return f"{self.done}/{self.length}" if self.length is not None else str(self.done)

    def _fraction(self) -> float | None:
        if self.length is None:
            return None
        return 1.0 if self.length == 0 else min(self.done / self.length, 1.0)

    def _bar(self) -> str:
        fraction = self._fraction()
        label = f"{self.label} " if self.label else ""
        if fraction is None:
            return f"{label}{self.done}"
        filled = int(fraction * _WIDTH)
        bar = "#" * filled + "-" * (_WIDTH - filled)
        return f"{label}[{bar}] {int(fraction * 100):3d}%  {self._count()}"

    def _draw(self) -> None:
        if self._finished:
            return
        fraction = self._fraction()
        if self.terminal:
            state: object = self.done if fraction is None else int(fraction * 100)
            if state != self._shown:
                self._shown = state
                self._write("\r" + self._bar())
            return
        if fraction is None:
            return  # unknown length: the start and end lines only
        quarter = int(fraction * 4)
        if 0 < quarter < 4 and quarter != self._shown:
            self._shown = quarter
            self._write(f"{self._prefix()}{int(fraction * 100)}%, {self._count()}\n")

    def _write(self, text: str) -> None:
        try:
            self.file.write(text)
            self.file.flush()
        except (OSError, ValueError):
            pass  # a closed or broken stderr must not stop the work being tracked


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


@overload
def progress(
    iterable: Iterable[T], *, label: str = "", length: int | None = None,
    file: TextIO | None = None,
) -> Progress[T]: ...
@overload
def progress(
    iterable: None = None, *, label: str = "", length: int | None = None,
    file: TextIO | None = None,
) -> Progress[NoReturn]: ...  # no items: advance() by hand


def progress(
    iterable: Iterable[T] | None = None,
    *,
    label: str = "",
    length: int | None = None,
    file: TextIO | None = None,
) -> Progress[T] | Progress[NoReturn]:
    """Wrap ``iterable`` so that iterating it shows progress on stderr.

    Args:
        iterable: The items (``None`` with ``length=`` for manual :meth:`Progress.advance`).
        label: Text in front of the bar.
        length: How many items there are (default: ``len(iterable)`` when it has one).
        file: Where to draw (default: stderr; never stdout unless you pass it).

    Returns:
        A :class:`Progress`: iterate over it, or use it as a context manager.

    Example:
        >>> with progress(length=2, label="Copying") as bar:  # doctest: +SKIP
        ...     bar.advance()
        ...     bar.advance()
    """
    return Progress(iterable, label=label, length=length, file=file)
