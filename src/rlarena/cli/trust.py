"""The --trust-module flag of every command that loads a checkpoint, package or experiment file."""

from __future__ import annotations

import argparse


def add_trust_module(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--trust-module",
        action="append",
        default=None,
        metavar="MODULE",
        dest="trusted_modules",
        help="let the file name classes and functions of MODULE (and its submodules), which are "
        "then imported; repeat for several. None: only rlarena's built-ins, Gymnasium ids and "
        "what you pass with --env load. Trust only files from people you trust",
    )
