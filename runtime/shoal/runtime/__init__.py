"""What runs on the nodes: worker bootstrap, and (in later parts) Ray node agents and workers.

This folder is a namespace slice: there is deliberately no ``runtime/shoal/__init__.py``.
"""
