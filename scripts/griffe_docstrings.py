"""A Griffe extension for the API reference (mkdocs.yml): reads proactiv's docstrings as they are written.

Two habits of the package's docstrings that numpydoc parsers read otherwise: a parameter is described on its own
line (``model : the frozen, differentiable model …``) where numpydoc expects a type after the colon, and
cross-references use Sphinx roles (``:class:`~proactiv.store.Run``` ). The first becomes a description, the
second inline code, before the docstring is parsed.
"""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:mod|class|func|meth|attr|data|obj|exc):`(~?)([^`]+)`")
#: the numpydoc sections that list names
NAMED = {"Parameters", "Other Parameters", "Returns", "Yields", "Raises", "Attributes"}
ENTRY = re.compile(r"^(\*{0,2}\w+) : (.+)$")


def _role(match: re.Match) -> str:
    short, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


def _descriptions(text: str) -> str:
    """``name : a description of several words`` becomes ``name`` with the description indented below it,
    inside the sections that list names; a real type (``int``, ``str, optional``) is left alone."""
    out: list[str] = []
    inside = False
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if out and set(line.strip()) == {"-"}:  # a section's underline: the line above names it
            inside = out[-1].strip() in NAMED
        underlined = i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
        if (
            inside
            and out
            and not out[-1].strip()
            and line[:1].isalpha()
            and " : " not in line
            and not underlined
        ):
            out += ["Notes", "-----"]  # prose after the list, not one more name: numpydoc has no place for it
            inside = False
        entry = ENTRY.match(line) if inside else None
        if entry and len(entry.group(2).split()) >= 4:
            out += [entry.group(1), "    " + entry.group(2)]
        else:
            out.append(line)
    return "\n".join(out)


class ProjectDocstrings(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **_) -> None:
        if obj.docstring is None:
            return
        obj.docstring.value = _descriptions(ROLE.sub(_role, obj.docstring.value))
