"""The progress protocol long-running library functions accept (the CLI renders it with rich).

A stage takes ``progress: Progress = SILENT`` and reports through tasks::

    with progress.task("normalizing", total=len(samples)) as task:
        for s in samples:
            ...
            task.advance()            # one item done
            task.update(loss="0.12")  # fields shown beside the bar (strings)
            task.note("skipped x: y") # a line printed above the bar

so the library never imports a console, and tests pass nothing (silence).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import ContextManager, Iterable, Iterator, Protocol, TypeVar

T = TypeVar("T")


class Task(Protocol):
    def advance(self, n: int = 1) -> None: ...

    def update(self, completed: int | None = None, **fields: str) -> None: ...

    def note(self, line: str) -> None: ...


class Progress(Protocol):
    def task(self, label: str, total: int | None = None, completed: int = 0) -> ContextManager[Task]: ...


class _SilentTask:
    def advance(self, n: int = 1) -> None:
        pass

    def update(self, completed: int | None = None, **fields: str) -> None:
        pass

    def note(self, line: str) -> None:
        pass


class Silent:
    """Reports nothing: the default of every library function."""

    @contextmanager
    def task(self, label: str, total: int | None = None, completed: int = 0) -> Iterator[Task]:
        yield _SilentTask()


SILENT = Silent()


def track(items: Iterable[T], progress: Progress, label: str, total: int | None = None) -> Iterator[T]:
    """Iterate ``items``, advancing a task of ``progress`` after each."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with progress.task(label, total=total) as task:
        for item in items:
            yield item
            task.advance()


class Recorder:
    """Keeps every report as ``(label, event, value)``: for tests, and for callers that react to
    progress (e.g. a benchmark timing the first finished item). ``on_event(label, event, value)``,
    if given, is called with each one as it happens."""

    def __init__(self, on_event=None):
        self.events: list[tuple[str, str, object]] = []
        self.on_event = on_event

    def _add(self, label: str, event: str, value) -> None:
        self.events.append((label, event, value))
        if self.on_event:
            self.on_event(label, event, value)

    @contextmanager
    def task(self, label: str, total: int | None = None, completed: int = 0) -> Iterator[Task]:
        recorder = self

        class _Task:
            def advance(self, n: int = 1) -> None:
                recorder._add(label, "advance", n)

            def update(self, completed: int | None = None, **fields: str) -> None:
                recorder._add(label, "update", {"completed": completed, **fields})

            def note(self, line: str) -> None:
                recorder._add(label, "note", line)

        self._add(label, "start", {"total": total, "completed": completed})
        yield _Task()

    def values(self, event: str, key: str | None = None) -> list:
        """The values of one kind of event (of one field of the updates)."""
        out = [v for _, e, v in self.events if e == event]
        return [v[key] for v in out if key in v] if key is not None else out
