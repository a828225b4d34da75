"""Read what a page shows, by its data-testid attributes."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta"}


class _TestIdTexts(HTMLParser):
    def __init__(self, testid: str):
        super().__init__()
        self.testid = testid
        self.texts: list[str] = []
        self._open: list[list] = []  # [depth, parts] of each matching element

    def handle_starttag(self, tag, attrs):
        if tag in _VOID:
            return
        for capture in self._open:
            capture[0] += 1
        if dict(attrs).get("data-testid") == self.testid:
            self._open.append([1, []])

    def handle_endtag(self, tag):
        if tag in _VOID:
            return
        for capture in self._open:
            capture[0] -= 1
        while self._open and self._open[-1][0] == 0:
            self.texts.append(" ".join("".join(self._open.pop()[1]).split()))

    def handle_data(self, data):
        for capture in self._open:
            capture[1].append(data)


def texts(response_or_html, testid: str) -> list[str]:
    """The whitespace-collapsed text of every element with this data-testid."""
    html = getattr(response_or_html, "content", response_or_html)
    if isinstance(html, bytes):
        html = html.decode()
    parser = _TestIdTexts(testid)
    parser.feed(html)
    parser.close()
    return parser.texts


def text(response_or_html, testid: str) -> str:
    found = texts(response_or_html, testid)
    assert len(found) == 1, f"{len(found)} elements with data-testid={testid!r}"
    return found[0]


def amount(response_or_html, testid: str) -> str:
    """The one dollar amount inside the element, e.g. "$25.00" or "-$0.0030"."""
    found = re.findall(r"-?\$[\d,]+\.\d+", text(response_or_html, testid))
    assert len(found) == 1, found
    return found[0]
