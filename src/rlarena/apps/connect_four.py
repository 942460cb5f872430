"""Moved to rlarena.games.connect_four.app (one game, one package). This name stays for old
imports; every name is looked up in the new module on first use."""

import importlib
from typing import Any

_NEW = "rlarena.games.connect_four.app"


def __getattr__(name: str) -> Any:
    return getattr(importlib.import_module(_NEW), name)


def __dir__() -> list[str]:
    return dir(importlib.import_module(_NEW))
