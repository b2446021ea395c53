"""Numbers in markdown that name where they come from: `−0.0013 [−0.0122, +0.0096]<!-- toy2d.x -->`.

Why a tag after the number, in an HTML comment: the page still reads (and renders) as prose, while
a program can find every generated number, recompute it and rewrite or check it in place. The
number a tag belongs to is the text right before it that has the form of the new value (numbers
free, any whitespace, line breaks included), so a wrapped interval stays wrapped. A tag is
`<!-- NAME [OPTION ...] -->` where NAME holds a dot and no space; other comments are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TAG = re.compile(r"<!-- ([A-Za-z0-9][\w.@%+=-]*\.[\w.@%+=-]+)((?: [\w.@%+=-]+)*) -->")
NUMBER = r"[+−-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_NUMBER = re.compile(NUMBER)
LOOKBACK = 400  # characters before a tag its number may span


def shape(text: str) -> str:
    """A pattern for any text of the form of `text`: its numbers any numbers, its spaces any
    whitespace, the rest literal; a leading `< ` (a p-value below what the page prints) either
    way, so `< 0.001` and `0.012` replace each other whole."""
    return r"(?:<\s+)?" + _shape(text.removeprefix("< "))


def _shape(text: str) -> str:
    out, at = [], 0
    for m in _NUMBER.finditer(text):
        out += [_literal(text[at:m.start()]), NUMBER]
        at = m.end()
    return "".join(out + [_literal(text[at:])])


def _literal(text: str) -> str:
    return r"\s+".join(re.escape(part) for part in text.split(" "))


def same(a: str, b: str) -> bool:
    """Equal up to whitespace (a wrapped number is the same number)."""
    return a.split() == b.split()


def rewrap(old: str, new: str) -> str:
    """`new` with `old`'s whitespace where both have as many gaps (a wrapped interval stays wrapped)."""
    gaps, parts = re.findall(r"\s+", old), new.split(" ")
    if len(gaps) != len(parts) - 1:
        return new
    return "".join(p + g for p, g in zip(parts, [*gaps, ""], strict=True))


@dataclass(frozen=True)
class Finding:
    """One tag whose number disagrees with its record, or that cannot be checked."""

    path: Path
    line: int
    name: str
    quoted: str  # what the page says ("" when no number of the right form precedes the tag)
    generated: str  # what the records give ("" for an unknown name)

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}: {self.name}"
        if not self.generated:
            return f"{where}: no quantity of this name (or no such form of it)"
        if not self.quoted:
            return f"{where}: no number of the form {self.generated!r} right before the tag"
        return f"{where}: the page says {' '.join(self.quoted.split())!r}, the records give {self.generated!r}"


def tags(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """(name, options) of every tag in `text`, in order."""
    return [(m.group(1), tuple(m.group(2).split())) for m in TAG.finditer(text)]


def update(path: Path, render: Callable[[str, tuple[str, ...]], str | None]) -> tuple[str, list[Finding]]:
    """The page with every tagged number replaced by `render(name, options)` (None: unknown name),
    and a Finding for each tag whose number differed or could not be placed."""
    text = Path(path).read_text()
    out, findings, at = [], [], 0
    for m in TAG.finditer(text):
        new = render(m.group(1), tuple(m.group(2).split()))
        line = text.count("\n", 0, m.start()) + 1
        before = text[max(at, m.start() - LOOKBACK):m.start()]
        old = re.search(f"(?:{shape(new)})$", before) if new else None
        if new is None or old is None:
            findings.append(Finding(Path(path), line, m.group(1), "", new or ""))
            out.append(text[at:m.end()])
        else:
            start = m.start() - len(before) + old.start()
            if not same(old.group(0), new):
                findings.append(Finding(Path(path), line, m.group(1), old.group(0), new))
                new = rewrap(old.group(0), new)
            else:
                new = old.group(0)
            out += [text[at:start], new, m.group(0)]
        at = m.end()
    return "".join(out + [text[at:]]), findings
