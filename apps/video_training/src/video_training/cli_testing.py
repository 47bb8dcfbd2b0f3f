"""Test helpers for the app commands: nothing may be built before a configuration error."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax


@contextlib.contextmanager
def nothing_built(monkeypatch: Any, builders: Sequence[tuple[Any, str]]) -> Iterator[None]:
    """Fails if any of `builders` (`(module, name)`) is called or any XLA program compiles.

    Args:
      monkeypatch: pytest's fixture (the patches are undone with it).
      builders: the functions that read data or build models, replaced by ones that fail.
    """

    def fail(*args, **kwargs):
        raise AssertionError("built something before reporting a configuration error")

    for module, name in builders:
        monkeypatch.setattr(module, name, fail)
    compiles = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert not compiles, "compiled an XLA program on a configuration error"


def assert_usage_error(
    main: Callable[[list[str]], int], argv: list[str], capsys: Any, *fragments: str, prog: str
) -> None:
    """`main(argv)` returns 2 and prints one `PROG: error: ...` line holding `fragments`."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    assert "Traceback" not in captured.err + captured.out
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
