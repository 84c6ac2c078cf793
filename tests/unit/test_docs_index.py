"""docs/README.md is the index of the documentation: every page is listed, and every link leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _links() -> set[str]:
    return set(re.findall(r"\]\(([^)#]+)\)", (DOCS / "README.md").read_text()))


def test_every_page_is_in_the_index() -> None:
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md") if p.name != "README.md"}
    pages -= {p for p in pages if p.startswith("pipeline-candidates/")}
    assert pages - _links() == set()


def test_every_link_of_the_index_leads_to_a_page() -> None:
    assert {link for link in _links() if not (DOCS / link).exists()} == set()
