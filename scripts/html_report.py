"""The HTML report: the attribution marts as four charts, in one page that fetches nothing.

    python scripts/html_report.py [output/sandbox.duckdb] [--output output/report.html]
    python scripts/html_report.py postgresql://user:password@host:5432/db --output report.html

Reads `channel_attribution` and `conversion_paths` (transform/) from a DuckDB file or a
PostgreSQL database, as warehouse_report.py does, and writes one self-contained file: the
page (report/page.html), its script (report/charts.js), Chart.js with its licence
(report/vendor/) and the figures, all inline. `make demo` writes it after every run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import typing as t
from datetime import datetime, timezone
from pathlib import Path

from warehouse_report import (
    MODELS_SCHEMA,
    Location,
    _Database,
    add_warehouse_arguments,
    named_location,
)

PAGE = Path(__file__).resolve().parent / "report"
MODELS = ("first_touch", "last_touch", "last_non_direct", "linear", "position_based", "time_decay")
"""The attribution models of `channel_attribution`, in the order the charts show them."""
MONTHLY_MODEL = "last_non_direct"
"""The model of the chart per month: a lead counts once, and direct visits do not take it."""
TOP_CHANNELS = 8
"""Channels (source / medium) a chart shows by name; the rest are added up as one."""
OTHER_CHANNELS = "other channels"
TOP_PATHS = 10


def read_figures(location: Location, *, models_schema: str = MODELS_SCHEMA) -> dict[str, t.Any]:
    """The report's figures, in currency units (the marts hold cents)."""
    # A PostgreSQL URL holds a password: the page and messages name the database's kind only.
    where = location.name if isinstance(location, Path) else "PostgreSQL"
    with _Database(location) as db:
        for mart in ("channel_attribution", "conversion_paths"):
            if not db.has_table(models_schema, mart):
                raise SystemExit(
                    f"No {models_schema}.{mart} in {where}: build the dbt models of "
                    "transform/ first (the job `leads-to-warehouse` does)."
                )
        attribution = f"{models_schema}.channel_attribution"
        paths = f"{models_schema}.conversion_paths"
        leads, conversions, value, first, last = db.one(
            "select coalesce(sum(leads), 0), coalesce(sum(converted_leads), 0), "
            f"coalesce(sum(value_cents), 0), min(month), max(month) from {paths}"
        ) or (0, 0, 0, None, None)
        monthly = db.all(
            "select month, source || ' / ' || medium, sum(credited_leads), "
            f"sum(credited_conversions) from {attribution} where attribution_model = ? "
            "group by 1, 2",
            MONTHLY_MODEL,
        )
        by_channel = db.all(
            "select source || ' / ' || medium, attribution_model, sum(credited_conversions), "
            f"sum(credited_value_cents) from {attribution} group by 1, 2"
        )
        top_paths = db.all(
            f"select path, sum(leads), sum(converted_leads), sum(value_cents) from {paths} "
            f"group by path order by 3 desc, 2 desc, 1 limit {TOP_PATHS}"
        )
        # Only the months a campaign has spend in: the cost of what that spend brought.
        spent = db.all(
            "select source || ' / ' || medium || ' / ' || campaign, attribution_model, "
            f"sum(spend_cents), sum(credited_conversions) from {attribution} "
            "where spend_cents is not null group by 1, 2"
        )
    return {
        "source": where,
        "generated": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        "models": MODELS,
        "totals": {
            "leads": int(leads),
            "conversions": int(conversions),
            "value": float(value) / 100,
            "first_month": f"{first:%Y-%m}" if first else None,
            "last_month": f"{last:%Y-%m}" if last else None,
        },
        "monthly": _monthly(monthly),
        "by_channel": _by_channel(by_channel),
        "paths": [
            {
                "path": path,
                "leads": int(leads),
                "conversions": int(converted),
                "value": float(value) / 100,
            }
            for path, leads, converted, value in top_paths
        ],
        "cost": _cost(spent) if spent else None,
    }


def _top(totals: dict[str, float]) -> list[str]:
    """The channels shown by name: the largest first (then by name), at most TOP_CHANNELS."""
    ranked = sorted(totals, key=lambda channel: (-totals[channel], channel))
    # Naming every channel beats an "other" of one.
    return ranked if len(ranked) <= TOP_CHANNELS + 1 else ranked[:TOP_CHANNELS]


def _monthly(rows: list[tuple[t.Any, ...]]) -> dict[str, t.Any]:
    months = sorted({month for month, *_ in rows})
    totals: dict[str, float] = {}
    for _, channel, leads, _ in rows:
        totals[channel] = totals.get(channel, 0.0) + float(leads)
    shown = _top(totals)
    labels = shown + ([OTHER_CHANNELS] if len(shown) < len(totals) else [])
    figures = {
        label: {"leads": [0.0] * len(months), "conversions": [0.0] * len(months)}
        for label in labels
    }
    index = {month: number for number, month in enumerate(months)}
    for month, channel, leads, conversions in rows:
        series = figures[channel if channel in shown else OTHER_CHANNELS]
        series["leads"][index[month]] += float(leads)
        series["conversions"][index[month]] += float(conversions)
    return {
        "model": MONTHLY_MODEL,
        "months": [f"{month:%Y-%m}" for month in months],
        "channels": [{"label": label, **figures[label]} for label in labels],
    }


def _by_channel(rows: list[tuple[t.Any, ...]]) -> dict[str, t.Any]:
    # Ranked by their conversions under the model of the monthly chart.
    totals = dict.fromkeys((channel for channel, *_ in rows), 0.0)
    for channel, model, conversions, _ in rows:
        if model == MONTHLY_MODEL:
            totals[channel] += float(conversions)
    shown = _top(totals)
    labels = shown + ([OTHER_CHANNELS] if len(shown) < len(totals) else [])
    models = {
        model: {"conversions": [0.0] * len(labels), "value": [0.0] * len(labels)}
        for model in MODELS
    }
    for channel, model, conversions, value in rows:
        at = labels.index(channel if channel in shown else OTHER_CHANNELS)
        models[model]["conversions"][at] += float(conversions)
        models[model]["value"][at] += float(value) / 100
    return {"channels": labels, "models": models}


def _cost(rows: list[tuple[t.Any, ...]]) -> dict[str, t.Any]:
    spend = {campaign: float(cents) / 100 for campaign, _, cents, _ in rows}
    conversions = {(campaign, model): float(count) for campaign, model, _, count in rows}
    # Most spend first; a campaign no model credits a conversion is named below the chart.
    ranked = sorted(spend, key=lambda campaign: (-spend[campaign], campaign))
    converting = [
        campaign
        for campaign in ranked
        if any(conversions.get((campaign, model)) for model in MODELS)
    ]
    return {
        "campaigns": converting,
        "spend": [spend[campaign] for campaign in converting],
        "models": {
            model: [
                spend[campaign] / conversions[(campaign, model)]
                if conversions.get((campaign, model))
                else None
                for campaign in converting
            ]
            for model in MODELS
        },
        "without_conversions": [
            {"campaign": campaign, "spend": spend[campaign]}
            for campaign in ranked
            if campaign not in converting
        ],
    }


def render(figures: dict[str, t.Any]) -> str:
    """The page, with Chart.js, its licence, the page's script and the figures inline."""
    chart_js = (PAGE / "vendor" / "chart.umd.min.js").read_text(encoding="utf-8")
    # The source map is not shipped: a browser's developer tools would try to fetch it.
    chart_js = "\n".join(
        line for line in chart_js.splitlines() if not line.startswith("//# sourceMappingURL=")
    )
    licence = (PAGE / "vendor" / "chart.js-LICENSE.md").read_text(encoding="utf-8")
    # `<` escaped, so no value can close the <script> element that holds the figures.
    data = json.dumps(figures, ensure_ascii=False).replace("<", "\\u003c")
    page = (PAGE / "page.html").read_text(encoding="utf-8")
    return (
        page.replace("/*FIGURES*/", data)
        .replace("/*CHART_JS*/", f"/*! Chart.js licence:\n{licence}*/\n{chart_js}")
        .replace("/*CHARTS*/", (PAGE / "charts.js").read_text(encoding="utf-8"))
    )


def write_report(location: Location, output: Path, *, models_schema: str = MODELS_SCHEMA) -> Path:
    """Write the page for the warehouse at `location` to `output`, whole or not at all."""
    page = render(read_figures(location, models_schema=models_schema))
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    partial.write_text(page, encoding="utf-8")
    os.replace(partial, output)
    return output


def main(argv: list[str] | None = None) -> int:
    """Write the HTML report of a warehouse file or PostgreSQL database."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_warehouse_arguments(parser)
    parser.add_argument(
        "--output", type=Path, default=Path("output/report.html"), help="the page to write"
    )
    args = parser.parse_args(argv)
    location = named_location(args.location)
    if location is None:
        return 1
    written = write_report(location, args.output, models_schema=args.models_schema)
    print(f"HTML report: {written} (open it in a browser; it fetches nothing)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
