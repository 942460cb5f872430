"""The `rlarena` command."""

from __future__ import annotations

import argparse
import sys

from rlarena._version import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rlarena", description="Fast, lean reinforcement learning.")
    parser.add_argument("--version", action="version", version=f"rlarena {__version__}")
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
