"""Each benchmark owns one marked section of a performance page, so running one leaves the others.

A section is the text between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``; a page
without the section gets it appended.
"""

from __future__ import annotations

import re
from pathlib import Path


def write_section(page: Path, name: str, body: str, *, title: str = "# Performance") -> None:
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.strip()}\n{end}"
    text = page.read_text() if page.exists() else f"{title}\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    page.write_text(text)
