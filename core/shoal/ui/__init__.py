"""The web view of a workspace (``shoal ui``): a read-only JSON API over its pools, jobs and runs.

:mod:`shoal.ui.views` computes what is shown (plain functions over shoal's public API);
:mod:`shoal.ui.app` serves it over HTTP (Starlette, uvicorn). Needs the ``ui`` extra.
"""
