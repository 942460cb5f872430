"""Moved to rlarena.games.connect_four.rules (issue 14: one game, one package). This name stays for
old imports and for checkpoints that name "rlarena.envs.connect_four:ConnectFourMultiAgent"; every
name is looked up in the new module on first use."""

import importlib
from typing import Any

_NEW = "rlarena.games.connect_four.rules"


def __getattr__(name: str) -> Any:
    return getattr(importlib.import_module(_NEW), name)


def __dir__() -> list[str]:
    return dir(importlib.import_module(_NEW))
