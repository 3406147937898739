"""The generated parts of docs/RECORD_SCHEMA.md: its tables of the record's fields and of the platform fields.

Each sits between ``<!-- generated: NAME -->`` and ``<!-- end generated -->``; ``python -m fggp_repro.spec.doc
docs/RECORD_SCHEMA.md`` brings them up to date, and a test fails while the page differs from :func:`render` of it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from .platform import PLATFORM
from .record import FIELDS, STATUSES, Field


def _type_cell(f: Field) -> str:
    text = f.kind + (f", {f.unit}" if f.unit else "")
    if f.choices:
        text += ": " + " or ".join(f"`{c}`" for c in f.choices)
    if set(f.null) == set(STATUSES):
        text += "; or null"
    elif f.null:
        text += f"; null {'exactly ' if f.null_only else ''}when {' or '.join(f.null)}"
    if f.older:
        text += "; absent in older records"
    return text


def fields_table() -> str:
    rows = ["| field | type | meaning |", "|---|---|---|"]
    rows += [f"| `{f.path}` | {_type_cell(f)} | {f.doc} |" for f in FIELDS]
    return "\n".join(rows)


def platform_table() -> str:
    rows = ["| field | read from | what |", "|---|---|---|"]
    rows += [f"| `{name}` | {where} | {what} |" for name, where, what in PLATFORM]
    return "\n".join(rows)


GENERATED = {"fields": fields_table, "platform": platform_table}
_BLOCK = re.compile(r"(<!-- generated: (\w+) -->\n).*?(<!-- end generated -->)", re.S)


def render(page: str) -> str:
    """``page`` with every generated block replaced by its table as the spec gives it now."""
    return _BLOCK.sub(lambda m: f"{m.group(1)}{GENERATED[m.group(2)]()}\n{m.group(3)}", page)


def blocks(page: str) -> list[str]:
    """The names of the generated blocks ``page`` holds, in order."""
    return [m.group(2) for m in _BLOCK.finditer(page)]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m fggp_repro.spec.doc docs/RECORD_SCHEMA.md", file=sys.stderr)
        return 2
    path = Path(argv[0])
    try:
        page = path.read_text()
        new = render(page)
        if new != page:
            path.write_text(new)
    except OSError as e:
        print(f"cannot update {path} ({e.strerror or e})", file=sys.stderr)
        return 2
    print(f"{path}: {'updated' if new != page else 'up to date'} ({', '.join(blocks(page))})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
