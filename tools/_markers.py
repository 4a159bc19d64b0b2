"""The one thing every table tool does last: put generated text between two markers of a file, atomically."""

from __future__ import annotations

import os


def replace_between(text: str, begin: str, end: str, body: str) -> str:
    """``text`` with everything between ``begin`` and ``end`` (the markers kept) replaced by ``body``."""
    start, stop = text.index(begin) + len(begin), text.index(end)
    return text[:start] + "\n" + body + "\n" + text[stop:]


def rewrite(path: str, sections: list[tuple[str, str, str]]) -> None:
    """Replaces each ``(begin, end, body)`` section of the file at ``path`` (skipping sections whose begin
    marker is absent) and writes it back through a temporary file renamed into place."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    for begin, end, body in sections:
        if begin in text:
            text = replace_between(text, begin, end, body)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
