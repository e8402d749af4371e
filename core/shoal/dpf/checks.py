"""Checks of what a user hands a DPF, made before anything is reserved or written.

Runs on the driver, in ``DPF(...)`` and ``DPF.run``/``run_from_stage``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import cloudpickle

from shoal.errors import ConfigError


def function_name(func: Any) -> str:
    return str(getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func))


def check_signature(func: Callable[..., Any], arity: int, shape: str) -> None:
    """Refuse a function that cannot be called with ``arity`` positional arguments.

    ``shape`` is how the caller writes the expected call, e.g. ``func(data_connector, context)``.
    Callables whose signature Python cannot read (some built-ins) are let through."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*range(arity))
    except TypeError as exc:
        raise ConfigError(
            f"{function_name(func)}{signature} cannot be called as {shape} ({exc}). Give it exactly "
            f"{arity} positional parameters, e.g. def {shape.split('(')[0]}"
            f"({shape.split('(', 1)[1]}."
        ) from None


def pickled_function(func: Callable[..., Any], by_value: Callable[..., Any] | None = None) -> bytes:
    """``func`` pickled with cloudpickle, as the workers will load it.

    ``by_value`` is the user's own function (a wrapper's ``user_function``): its module is pickled
    by value, so workers need not import it. A function that cannot be pickled is refused with
    what it captured."""
    from shoal.jobs.payload import _by_value

    user_function = by_value or func
    try:
        with _by_value(user_function):
            return bytes(cloudpickle.dumps(func))
    except Exception as exc:  # cloudpickle raises PicklingError, TypeError or others
        raise ConfigError(
            f"the partition function {function_name(user_function)} cannot be sent to the workers: "
            f"pickling it failed with {type(exc).__name__}: {exc}. It probably refers to an object "
            f"that only lives in this process (an open connection, a lock, a file handle); create "
            f"that object inside the function instead."
        ) from exc
