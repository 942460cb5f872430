"""Write the table of what each config option decides when a file sets it into docs/files-from-others.md
(between its two marker lines). Run after adding or changing an option: a test checks the page."""

from __future__ import annotations

import sys
from pathlib import Path

from rlarena.algorithms.roles import roles_table

BEGIN, END = "<!-- option roles: begin (scripts/write_option_roles.py) -->", "<!-- option roles: end -->"
PAGE = Path(__file__).resolve().parent.parent / "docs" / "files-from-others.md"


def page_with_table(text: str) -> str:
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{roles_table()}{END}{tail}"


if __name__ == "__main__":
    text = PAGE.read_text()
    new = page_with_table(text)
    if "--check" in sys.argv:
        sys.exit(0 if new == text else f"{PAGE} is out of date: run python scripts/write_option_roles.py")
    PAGE.write_text(new)
