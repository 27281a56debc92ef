"""Every relative link of README.md and docs/*.md leads to a file that exists, and every
``#anchor`` to a heading of that file (GitHub's anchors: lower case, punctuation dropped, spaces
as hyphens)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def anchors(page: Path) -> set:
    headings = re.findall(r"^#+ (.+)$", FENCE.sub("", page.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def links() -> list:
    found = []
    for page in DOCS:
        for target in LINK.findall(FENCE.sub("", page.read_text())):
            if not re.match(r"[a-z]+:", target):  # http:, https:, mailto: are not checked
                found.append((page, target))
    return found


@pytest.mark.parametrize("page, target", links(),
                         ids=[f"{p.relative_to(REPO)}->{t}" for p, t in links()])
def test_link_resolves(page, target):
    path, _, anchor = target.partition("#")
    destination = (page.parent / path).resolve() if path else page
    assert destination.exists(), f"{page.relative_to(REPO)}: {target} does not exist"
    if anchor and destination.suffix == ".md":
        assert anchor in anchors(destination), f"{page.relative_to(REPO)}: no heading #{anchor} in {path}"
