"""Headless Chromium for the HTML report's tests: a page's DOM after its scripts have run.

Chromium is Debian's package, which `.ci/chromium.sh` installs and names in
LEADTRACKR_TEST_CHROMIUM (else `chromium` on the PATH). No Chromium is a failure, never a
skip, as no PostgreSQL is.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import typing as t
from html.parser import HTMLParser
from pathlib import Path

import pytest

# Without the networking flags, Chromium's own connections (updates, sync, QUIC probes) are
# refused by a closed network; as root (CI), Chromium runs only without its sandbox.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium() -> str:
    """The Chromium to run."""
    found = os.environ.get("LEADTRACKR_TEST_CHROMIUM") or next(
        filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None
    )
    if not found:
        pytest.fail(
            "No Chromium for the HTML report's tests: install Debian's `chromium` "
            "(`source .ci/chromium.sh && install_chromium`, as root) or set "
            "LEADTRACKR_TEST_CHROMIUM to a Chromium or Chrome."
        )
    return found


class Page(t.NamedTuple):
    """What the page left on its elements once drawn."""

    errors: list[str]
    drawn: bool
    charts: dict[str, dict[str, t.Any]]
    """By `data-chart`: the labels and datasets the chart holds (its `data-figures`)."""
    text: str
    elements: list[tuple[str, dict[str, str | None]]]


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.root: dict[str, str | None] = {}
        self.charts: dict[str, dict[str, t.Any]] = {}
        self.text: list[str] = []
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.elements.append((tag, attributes))
        self._in_script = tag in ("script", "style")
        if tag == "html":
            self.root = attributes
        if tag == "figure" and attributes.get("data-chart"):
            self.charts[str(attributes["data-chart"])] = json.loads(
                attributes.get("data-figures") or "null"
            )

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if not self._in_script:
            self.text.append(data)


def open_page(page: Path, workdir: Path) -> Page:
    """Open `page` in headless Chromium and read what its scripts left in the DOM."""
    workdir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={workdir}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    reader = _Reader()
    reader.feed(result.stdout)
    return Page(
        errors=json.loads(reader.root.get("data-errors") or "[]"),
        drawn=reader.root.get("data-drawn") == "true",
        charts=reader.charts,
        text=" ".join(" ".join(reader.text).split()),
        elements=reader.elements,
    )
