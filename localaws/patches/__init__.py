"""Patches of moto's backends, applied inside the local server process before it serves.

``localaws.patches``: applied by :mod:`localaws.server`, and in-process by tests that run
moto without the server (``tests/moto_stack.py``).

Each module of this package closes one gap between moto and the real service that the
product depends on, and exposes ``apply()`` (idempotent). ``apply_all()`` imports every
module here, so adding a patch is adding a file. The README table "what the local AWS
emulates and what it does not" lists them.

A patch with run-time settings registers ``CONTROLS[name] = configure`` in its
``apply()``; the server answers ``POST /_local/control/<name>?key=value`` with
``configure({key: value})`` (tests switch emulator behaviour on and off this way).
"""

from __future__ import annotations

import importlib
import pkgutil

_applied: list[str] = []
CONTROLS: dict = {}  # name -> configure(dict of query values) -> dict of current settings


def apply_all() -> list[str]:
    """Apply every patch module of this package once; return their names, in order."""
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        if module_info.name.startswith("_") or module_info.name in _applied:
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        module.apply()
        _applied.append(module_info.name)
    return list(_applied)
