"""`output/report.html` in a real headless Chromium: it loads, fetches nothing, and its four
charts hold the marts' figures.

The warehouse is the main job's on sandbox leads, with the demo's spend sample as `make
demo` sets it. The page is written by `scripts/html_report.py` as a user runs it;
the expected figures are queried here from the marts, not taken from the script.
"""

from __future__ import annotations

import http.server
import shutil
import subprocess
import sys
import threading
import typing as t
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest

from tap_leadtrackr.sandbox import Project, Sandbox, generate_leads
from tests.e2e.browser import Page, open_page
from tests.e2e.conftest import ROOT, Meltano, query_duckdb, sandbox_env

LEADS = 900
MODEL_LABELS = {
    "first_touch": "First touch",
    "last_touch": "Last touch",
    "last_non_direct": "Last non-direct",
    "linear": "Linear",
    "position_based": "Position-based",
    "time_decay": "Time decay",
}
OTHER = "other channels"
CHARTS = {
    "monthly-leads",
    "monthly-conversions",
    "credited-conversions",
    "credited-value",
    "top-paths",
    "cost-per-conversion",
}


@pytest.fixture(scope="module")
def warehouse(meltano_installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The job `leads-to-warehouse` (load, dbt build) run once on sandbox leads."""
    workdir = tmp_path_factory.mktemp("html-report")
    warehouse = workdir / "warehouse.duckdb"
    with Sandbox(Project(generate_leads(LEADS, seed=63))) as sandbox:
        Meltano(workdir / "meltano", meltano_installed)(
            "run",
            "leads-to-warehouse",
            # As `make demo` runs it: with the spend sample of the sandbox's channels.
            env=sandbox_env(
                sandbox, TARGET_DUCKDB_FILEPATH=warehouse, DBT_DUCKDB_AD_SPEND="sandbox_ad_spend"
            ),
        )
    return warehouse


def write_page(warehouse: Path, page: Path) -> Path:
    """`python scripts/html_report.py WAREHOUSE --output PAGE`, as a user runs it."""
    result = subprocess.run(
        [sys.executable, "scripts/html_report.py", str(warehouse), "--output", str(page)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"HTML report: {page}" in result.stdout
    return page


def series(chart: dict[str, t.Any]) -> dict[str, list[float | None]]:
    """A chart's datasets by label; each drew one element per label of the chart."""
    for dataset in chart["datasets"]:
        assert dataset["drawn"] == len(chart["labels"]), dataset["label"]
    return {dataset["label"]: dataset["data"] for dataset in chart["datasets"]}


def assert_named_and_other(
    shown: dict[str, list[float | None]],
    expected: dict[str, list[float]],
    *,
    largest_named: bool = True,
) -> None:
    """Named series equal the marts' figures; `other channels` is the rest; none is lost."""
    named = {label: values for label, values in shown.items() if label != OTHER}
    for label, values in named.items():
        assert values == pytest.approx(expected[label]), label
    rest = [label for label in expected if label not in named]
    if rest:
        total = [sum(values) for values in zip(*(expected[label] for label in rest), strict=True)]
        assert shown[OTHER] == pytest.approx(total)
        if largest_named:
            smallest = min(sum(values) for values in named.values())  # type: ignore[arg-type]
            assert all(sum(expected[label]) <= smallest for label in rest)
    else:
        assert OTHER not in shown


def test_the_page_loads_without_an_error_and_its_charts_hold_the_marts_figures(
    warehouse: Path, tmp_path: Path
) -> None:
    page = open_page(write_page(warehouse, tmp_path / "report.html"), tmp_path / "chromium")
    assert page.errors == []
    assert page.drawn
    assert set(page.charts) == CHARTS

    # Leads and conversions per month by channel, under `last_non_direct`.
    months: dict[str, dict[str, float]] = defaultdict(dict)
    conversions: dict[str, dict[str, float]] = defaultdict(dict)
    for month, channel, leads, converted in query_duckdb(
        warehouse,
        "select strftime(month, '%Y-%m'), source || ' / ' || medium, sum(credited_leads), "
        "sum(credited_conversions) from analytics.channel_attribution "
        "where attribution_model = 'last_non_direct' group by 1, 2",
    ):
        months[channel][month], conversions[channel][month] = leads, converted
    every_month = sorted({month for by_month in months.values() for month in by_month})
    for name, figures in (("monthly-leads", months), ("monthly-conversions", conversions)):
        chart = page.charts[name]
        assert chart["labels"] == every_month
        expected = {
            channel: [by_month.get(month, 0.0) for month in every_month]
            for channel, by_month in figures.items()
        }
        # Named by leads: the conversions chart names the same channels.
        assert_named_and_other(series(chart), expected, largest_named=name == "monthly-leads")
    assert sum(map(sum, series(page.charts["monthly-leads"]).values())) == pytest.approx(LEADS)

    # Credited conversions and value by channel, one dataset per model.
    credited: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for channel, model, converted, value in query_duckdb(
        warehouse,
        "select source || ' / ' || medium, attribution_model, sum(credited_conversions), "
        "sum(credited_value_cents) / 100 from analytics.channel_attribution group by 1, 2",
    ):
        credited["conversions"][model][channel] = converted
        credited["value"][model][channel] = value
    for measure in ("conversions", "value"):
        chart = page.charts[f"credited-{measure}"]
        shown = series(chart)
        assert list(shown) == list(MODEL_LABELS.values())
        for model, label in MODEL_LABELS.items():
            by_channel = credited[measure][model]
            every_channel = set().union(*credited[measure].values())
            at = {channel: [by_channel.get(channel, 0.0)] for channel in every_channel}
            columns = {
                channel: [value]
                for channel, value in zip(chart["labels"], shown[label], strict=True)
            }
            assert_named_and_other(columns, at, largest_named=False)

    # The top conversion paths by conversions.
    paths = dict(
        query_duckdb(
            warehouse,
            "select path, sum(converted_leads) from analytics.conversion_paths group by path",
        )
    )
    chart = page.charts["top-paths"]
    shown_paths = series(chart)["Conversions"]
    assert len(chart["labels"]) == 10
    assert shown_paths == [paths[path] for path in chart["labels"]]
    assert shown_paths == sorted(shown_paths, reverse=True)
    assert all(paths[path] <= shown_paths[-1] for path in set(paths) - set(chart["labels"]))
    assert chart["labels"][0] in page.text  # and in the table under the chart

    # Cost per conversion: the demo's spend sample, per campaign, over the months it covers.
    spend: dict[str, float] = {}
    converted_with_spend: dict[tuple[str, str], float] = {}
    for campaign, model, cents, converted in query_duckdb(
        warehouse,
        "select source || ' / ' || medium || ' / ' || campaign, attribution_model, "
        "sum(spend_cents), sum(credited_conversions) from analytics.channel_attribution "
        "where spend_cents is not null group by 1, 2",
    ):
        spend[campaign] = cents / 100
        converted_with_spend[(campaign, model)] = converted
    chart = page.charts["cost-per-conversion"]
    shown = series(chart)
    assert set(chart["labels"]) == {
        campaign for (campaign, _), converted in converted_with_spend.items() if converted
    }
    for model, label in MODEL_LABELS.items():
        assert shown[label] == pytest.approx(
            [
                spend[campaign] / converted_with_spend[(campaign, model)]
                if converted_with_spend[(campaign, model)]
                else None
                for campaign in chart["labels"]
            ]
        ), model
    # The sample's TikTok test brought no lead: named under the chart with its spend.
    assert "Spend without a credited conversion under any model: tiktok / cpc" in page.text

    # Self-contained: no element refers to anything outside the page.
    for tag, attributes in page.elements:
        assert tag not in ("link", "iframe", "object", "embed"), tag
        assert not {"src", "href", "srcset", "action", "data", "poster"} & set(attributes), tag
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "url(" not in html.split("<script>", 1)[0]  # no stylesheet fetches a font or image
    assert "sourceMappingURL" not in html


def test_without_spend_the_page_says_how_to_add_it(warehouse: Path, tmp_path: Path) -> None:
    no_spend = tmp_path / "no-spend.duckdb"
    shutil.copy(warehouse, no_spend)
    with duckdb.connect(str(no_spend)) as db:
        db.execute(
            "update analytics.channel_attribution set spend_cents = null, "
            "cost_per_lead_cents = null, cost_per_conversion_cents = null, roas = null"
        )
    page = open_page(write_page(no_spend, tmp_path / "report.html"), tmp_path / "chromium")
    assert page.errors == []
    assert page.drawn
    assert set(page.charts) == CHARTS - {"cost-per-conversion"}
    assert "No ad spend in this warehouse: set the dbt var ad_spend" in page.text


class _Counting(http.server.BaseHTTPRequestHandler):
    requests: t.ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, format: str, *args: t.Any) -> None:
        pass


def test_the_page_fetches_nothing_even_when_made_to_and_says_so(
    warehouse: Path, tmp_path: Path
) -> None:
    # The page's policy blocks any fetch; shown by making it try one from a local server.
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page_file = write_page(warehouse, tmp_path / "report.html")
        url = f"http://127.0.0.1:{server.server_address[1]}"
        html = page_file.read_text(encoding="utf-8").replace(
            "</main>", f'<img src="{url}/pixel.png"><script src="{url}/more.js"></script></main>'
        )
        page_file.write_text(html, encoding="utf-8")
        page: Page = open_page(page_file, tmp_path / "chromium")
    finally:
        server.shutdown()
        server.server_close()
    assert _Counting.requests == []
    assert sorted(page.errors) == [
        f"blocked {url}/more.js (script-src-elem)",
        f"blocked {url}/pixel.png (img-src)",
    ]
    assert page.drawn


@pytest.mark.parametrize("script", ["html_report.py", "warehouse_report.py"])
def test_a_missing_warehouse_is_named_with_what_to_run(script: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.duckdb"
    result = subprocess.run(
        [sys.executable, f"scripts/{script}", str(missing)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == f"No warehouse at {missing}: run `make demo` first.\n"
    assert not missing.exists()
