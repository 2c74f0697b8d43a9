"""The documentation holds together: every relative link and anchor of the README and `docs/`
resolves, as GitHub renders them, and a long page lists its sections."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LONG_PAGE = 150
"""Lines from which a page needs a table of contents."""

FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+).+?\1", re.DOTALL)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$", re.MULTILINE)
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")


def prose(markdown: str) -> str:
    """The text without code blocks and code spans, where nothing is a link."""
    return CODE_SPAN.sub("", FENCE.sub("", markdown))


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading (github-slugger's rule).

    The rendered text, lower-cased; everything but letters, digits, `_`, `-` and spaces
    goes, and each space becomes a `-`.
    """
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = re.sub(r"<[^>]+>", "", text)  # so does HTML
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor of a Markdown page: its headings' (a repeated one gets -1, -2, ...)."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    found = set(HTML_ANCHOR.findall(text))
    for _, heading in HEADING.findall(text):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[str]:
    """The targets of a page's links and images, inline and reference-style."""
    text = prose(page.read_text(encoding="utf-8"))
    return LINK.findall(text) + REFERENCE.findall(text)


def broken(page: Path, target: str) -> str | None:
    """Why a relative link of `page` leads nowhere, or None when it resolves."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("//"):
        return None  # another site: not checked here, the suite runs offline
    path, _, anchor = target.partition("#")
    destination = (page.parent / path).resolve() if path else page
    if not destination.is_relative_to(ROOT):
        return f"{target}: outside the repository"
    if not destination.exists():
        return f"{target}: no such file"
    if anchor and destination.suffix != ".md":
        return f"{target}: an anchor into a file that is not Markdown"
    if anchor and anchor not in anchors(destination):
        return f"{target}: no heading with this anchor in {destination.relative_to(ROOT)}"
    return None


def sections(page: Path) -> list[str]:
    """The anchors of a page's `##` headings, in order."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return [slug(heading) for level, heading in HEADING.findall(text) if level == "##"]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    problems = [problem for target in links(page) if (problem := broken(page, target))]

    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_a_long_page_lists_every_section_at_its_top(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    if page.name == "README.md" or len(text.splitlines()) < LONG_PAGE:
        return
    contents = text.split("\n## ", 1)[0]
    listed = [target[1:] for target in LINK.findall(prose(contents)) if target.startswith("#")]

    assert listed == sections(page), f"{page.name}: its contents, before its first section"


def test_the_readme_links_every_page_of_the_docs() -> None:
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in links(PAGES[0])}

    assert set(PAGES[1:]) <= linked, "pages of docs/ that the README does not link"


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Marketing journeys: `lead_touchpoints`", "marketing-journeys-lead_touchpoints"),
        ("Several projects in one sync (agencies)", "several-projects-in-one-sync-agencies"),
        ("The main job: `make demo`", "the-main-job-make-demo"),
        ("401 → 403, and **why** [here](x.md)", "401--403-and-why-here"),
        ("Zoë's `pii`", "zoës-pii"),
    ],
)
def test_a_heading_gets_githubs_anchor(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor
