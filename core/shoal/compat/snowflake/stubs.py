"""Stand-ins for the reference's names that shoal does not implement: importable, and raising
:class:`~shoal.errors.NotSupportedError` ("... is not supported by shoal: ...; use ... instead")
when used. Runs wherever the compatibility layer is installed.
"""

from __future__ import annotations

from typing import Any, NoReturn

from shoal.errors import NotSupportedError


def refuse(name: str, why: str, instead: str) -> NoReturn:
    raise NotSupportedError(f"{name} is not supported by shoal: {why}; use {instead} instead.")


def unsupported_class(
    qualname: str,
    why: str,
    instead: str,
    *,
    methods: tuple[str, ...] = (),
    attributes: tuple[str, ...] = (),
) -> type:
    """A class named like the reference's whose construction and methods raise; its documented
    attributes exist (as None) so that code reading them at import time still loads."""

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        refuse(qualname, why, instead)

    namespace: dict[str, Any] = {
        "__init__": init,
        "__doc__": f"Not supported by shoal: {why}. Use {instead}.",
    }
    for method in methods:

        def call(self: Any, *args: Any, _method: str = method, **kwargs: Any) -> Any:
            refuse(f"{qualname}.{_method}", why, instead)

        call.__name__ = method
        namespace[method] = call
    for attribute in attributes:
        namespace[attribute] = None
    cls = type(qualname.rsplit(".", 1)[-1], (), namespace)
    cls.__module__ = qualname.rsplit(".", 1)[0]
    return cls


def unsupported_function(qualname: str, why: str, instead: str) -> Any:
    def function(*args: Any, **kwargs: Any) -> Any:
        refuse(qualname, why, instead)

    function.__name__ = qualname.rsplit(".", 1)[-1]
    function.__qualname__ = function.__name__
    function.__module__ = qualname.rsplit(".", 1)[0]
    return function
