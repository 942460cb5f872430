"""Moved to rlarena.games.connect_four.features (issue 14: one game, one package). This name stays for
old imports; every name is looked up in the new module on first use (which imports torch, as the
features need it)."""

import importlib
from typing import Any

_NEW = "rlarena.games.connect_four.features"


def __getattr__(name: str) -> Any:
    return getattr(importlib.import_module(_NEW), name)


def __dir__() -> list[str]:
    return dir(importlib.import_module(_NEW))
