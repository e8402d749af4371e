"""The built-in plugins of shoal.

Each module here is a plugin registered through the same path as third-party plugins (see
``shoal.plugin_manager.BUILTIN_PLUGINS``) and can be blocked by its name, e.g.
``SHOAL_BLOCKED_PLUGINS=fsspec_stage``. A plugin module must not import heavy frameworks at
import time: it imports them inside the factories it contributes.

This folder is a namespace slice: there is deliberately no ``plugins/shoal/__init__.py``.
"""
