"""Reading a report page back: its figures (the plotly JSON it embeds), their labels, and its links."""

import json
import re
from html.parser import HTMLParser

from plotly.offline import get_plotlyjs


class _Links(HTMLParser):
    """Every src and href attribute of the page's elements (script text is not parsed as markup)."""

    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.links += [v or "" for k, v in attrs if k in ("src", "href")]


def links(page: str) -> list[str]:
    parser = _Links()
    parser.feed(page)
    return parser.links


def figures(page: str) -> list[dict]:
    """The plotly figures the page draws, in page order."""
    start = page.index("var FIGURES = ") + len("var FIGURES = ")
    return json.loads(page[start : page.index(";\n", start)])


def labels(page: str) -> list[str]:
    """The accessible label of each figure, in page order."""
    return re.findall(r"<div class='plot' role='img' aria-label='([^']*)' data-figure='\d+'>", page)


def assert_self_contained(page: str) -> None:
    """Opens offline: no web address in any src or href, no external stylesheet, plotly.js inlined once,
    and every figure placeholder has its figure."""
    assert not [u for u in links(page) if re.match(r"\s*(https?:)?//", u)], "the report must open offline"
    assert "<link" not in page and "<script src" not in page
    assert page.count(get_plotlyjs()[:200]) == 1
    shown = re.findall(r"data-figure='(\d+)'", page)
    assert shown and [int(i) for i in shown] == list(range(len(figures(page))))
