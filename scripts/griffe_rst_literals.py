"""A griffe extension for the docs build: reST literal blocks in docstrings, as Markdown.

``codex_core`` docstrings introduce examples the reST way (a paragraph ending in ``::``, then an
indented block). Markdown already renders the indented block as code; this turns the ``::``
into ``:`` so the text reads right. Loaded by mkdocstrings (``mkdocs.yml``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_LITERAL = re.compile(r"(?<=\S)::$", re.M)


class RstLiterals(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _LITERAL.sub(":", obj.docstring.value)
