"""The attribution marts on crafted journeys, worked out by hand, in DuckDB and PostgreSQL.

Each crafted lead is served by the sandbox and goes the whole way: tap, loader, dbt. Its
credits under each model are written below as fractions worked out by hand (1, 2, 3 and 5
touches, a journey all direct, touches at one instant, leads without a journey, a long
path), with ad spend in a table of the warehouse that the dbt var `ad_spend` names.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import typing as t
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import psycopg
import pytest

from tap_leadtrackr.sandbox import Project, Sandbox, generate_leads
from tap_leadtrackr.timestamps import format_timestamp
from tests.e2e.conftest import ROOT, Meltano, query_duckdb, sandbox_env
from tests.e2e.test_dbt_models import as_two_projects, dbt_postgres_env
from tests.e2e.test_meltano_postgres import query, sqlalchemy_url

MODELS = (
    "first_touch",
    "last_touch",
    "last_non_direct",
    "linear",
    "position_based",
    "time_decay",
)
MARCH = datetime(2026, 3, 20, 12, tzinfo=timezone.utc)
APRIL = datetime(2026, 4, 10, 8, tzinfo=timezone.utc)

Channel = tuple[str, str, str]
GOOGLE_BRAND: Channel = ("google", "cpc", "brand_nl")
GOOGLE_GENERIC: Channel = ("google", "cpc", "zonnepanelen_generic")
GOOGLE_ORGANIC: Channel = ("google", "organic", "(organic)")
BING_BRAND: Channel = ("bing", "cpc", "brand_nl")
FACEBOOK_SPRING: Channel = ("facebook", "cpc", "voorjaarsactie")
FACEBOOK_RETARGETING: Channel = ("facebook", "cpc", "retargeting_30d")
NEWSLETTER: Channel = ("newsletter", "email", "nieuwsbrief-maart")
DIRECT: Channel = ("(direct)", "(none)", "(none)")
"""A direct session carries no campaign: `(none)`."""
GOOGLE_CLICK: Channel = ("google", "cpc", "(none)")
NONE: Channel = ("(none)", "(none)", "(none)")


class Crafted(t.NamedTuple):
    """A lead: created when, its status and price, and its journey as (days before, channel)."""

    created: datetime
    status: str
    price: int | None
    touches: tuple[tuple[float, Channel], ...]
    gclid: bool = False


LEADS: dict[str, Crafted] = {
    "one touch": Crafted(MARCH, "Sale", 100_000, ((1, GOOGLE_BRAND),)),
    "two touches": Crafted(MARCH, "lost", None, ((7, FACEBOOK_SPRING), (0, DIRECT))),
    "three touches": Crafted(
        MARCH, "Offerte", 50_000, ((14, GOOGLE_ORGANIC), (7, NEWSLETTER), (0, BING_BRAND))
    ),
    "all direct": Crafted(MARCH, "open", None, ((2, DIRECT), (1, DIRECT), (0, DIRECT))),
    "one instant": Crafted(
        MARCH, "Qualified lead", 30_000, ((1, GOOGLE_BRAND), (1, FACEBOOK_SPRING))
    ),
    "no journey, a gclid": Crafted(MARCH, "pending", None, (), gclid=True),
    "no journey": Crafted(MARCH, "Sale", 70_000, ()),
    "five touches": Crafted(
        APRIL,
        "Sale",
        250_000,
        (
            (28, GOOGLE_GENERIC),
            (21, FACEBOOK_RETARGETING),
            (14, GOOGLE_GENERIC),
            (7, NEWSLETTER),
            (0, DIRECT),
        ),
    ),
    "eight touches": Crafted(
        APRIL,
        "lost",
        None,
        (
            (49, GOOGLE_BRAND),
            (42, GOOGLE_BRAND),
            (35, DIRECT),
            (28, FACEBOOK_RETARGETING),
            (21, NEWSLETTER),
            (14, BING_BRAND),
            (7, GOOGLE_ORGANIC),
            (0, DIRECT),
        ),
    ),
}


def _every_model(credits: list[float]) -> dict[str, list[float]]:
    return dict.fromkeys(MODELS, credits)


CREDITS: dict[str, dict[str, list[float]]] = {
    # Worked out by hand: each lead's credit per touch, in journey order, under each model.
    # Time decay, half-life 7 days: weights 2^(-days / 7), then divided by their sum.
    "one touch": _every_model([1]),
    "two touches": {
        "first_touch": [1, 0],
        "last_touch": [0, 1],
        "last_non_direct": [1, 0],
        "linear": [1 / 2, 1 / 2],
        "position_based": [1 / 2, 1 / 2],
        "time_decay": [1 / 3, 2 / 3],  # 1/2 and 1, of 3/2
    },
    "three touches": {
        "first_touch": [1, 0, 0],
        "last_touch": [0, 0, 1],
        "last_non_direct": [0, 0, 1],
        "linear": [1 / 3, 1 / 3, 1 / 3],
        "position_based": [0.4, 0.2, 0.4],
        "time_decay": [1 / 7, 2 / 7, 4 / 7],  # 1/4, 1/2 and 1, of 7/4
    },
    "all direct": {
        "first_touch": [1, 0, 0],
        "last_touch": [0, 0, 1],
        "last_non_direct": [0, 0, 1],  # no touch that is not direct: the last
        "linear": [1 / 3, 1 / 3, 1 / 3],
        "position_based": [0.4, 0.2, 0.4],
        "time_decay": [2 ** (-2 / 7), 2 ** (-1 / 7), 1],  # divided below by their sum
    },
    "one instant": {
        "first_touch": [1, 0],
        "last_touch": [0, 1],
        "last_non_direct": [0, 1],
        "linear": [1 / 2, 1 / 2],
        "position_based": [1 / 2, 1 / 2],
        "time_decay": [1 / 2, 1 / 2],  # the same age, the same weight
    },
    "no journey, a gclid": _every_model([1]),
    "no journey": _every_model([1]),
    "five touches": {
        "first_touch": [1, 0, 0, 0, 0],
        "last_touch": [0, 0, 0, 0, 1],
        "last_non_direct": [0, 0, 0, 1, 0],
        "linear": [1 / 5] * 5,
        "position_based": [0.4, 0.2 / 3, 0.2 / 3, 0.2 / 3, 0.4],
        "time_decay": [1 / 31, 2 / 31, 4 / 31, 8 / 31, 16 / 31],  # 1/16 ... 1, of 31/16
    },
    "eight touches": {
        "first_touch": [1, 0, 0, 0, 0, 0, 0, 0],
        "last_touch": [0, 0, 0, 0, 0, 0, 0, 1],
        "last_non_direct": [0, 0, 0, 0, 0, 0, 1, 0],
        "linear": [1 / 8] * 8,
        "position_based": [0.4, *[0.2 / 6] * 6, 0.4],
        "time_decay": [2**k / 255 for k in range(8)],  # 1/128 ... 1, of 255/128
    },
}
# The one figure not a plain fraction, normalised here: 2^(-2/7), 2^(-1/7) and 1 of their sum.
CREDITS["all direct"]["time_decay"] = [
    weight / sum(CREDITS["all direct"]["time_decay"])
    for weight in CREDITS["all direct"]["time_decay"]
]

PATHS = {
    "one touch": "google / cpc",
    "two touches": "facebook / cpc > (direct) / (none)",
    "three touches": "google / organic > newsletter / email > bing / cpc",
    "all direct": "(direct) / (none) x3",
    "one instant": "google / cpc > facebook / cpc",
    "no journey, a gclid": "google / cpc",
    "no journey": "(none) / (none)",
    "five touches": (
        "google / cpc > facebook / cpc > google / cpc > newsletter / email > (direct) / (none)"
    ),
    # Seven steps (two touches of google / cpc in a row are one): the first, then the last 4.
    "eight touches": "google / cpc x2 > ... > newsletter / email > bing / cpc > google / organic "
    "> (direct) / (none)",
}

SPEND = (
    # date, source, medium, campaign, spend (euros): two days of one campaign in a month,
    # a campaign without leads, and a blank campaign, which is `(none)`.
    ("2026-03-05", "google", "cpc", "brand_nl", 100.00),
    ("2026-03-20", "google", "cpc", "brand_nl", 50.00),
    ("2026-03-31", "facebook", "cpc", "voorjaarsactie", 90.00),
    ("2026-03-10", "google", "cpc", "", 30.00),
    ("2026-04-15", "google", "cpc", "zonnepanelen_generic", 200.00),
    ("2026-04-01", "tiktok", "cpc", "awareness_test", 40.00),
)
SPEND_DDL = (
    'create table {table} ("date" date, source varchar, medium varchar, campaign varchar, '
    "spend numeric(12, 2))"
)

CONVERTED = {"Sale", "Offerte", "Qualified lead"}


def crafted_leads() -> list[dict[str, t.Any]]:
    """The sandbox leads, ids in the order of LEADS (which is their creation order)."""
    leads = generate_leads(len(LEADS), seed=77)
    for number, (lead, crafted) in enumerate(zip(leads, LEADS.values(), strict=True)):
        # One millisecond apart: the leads of a month are created at (almost) one instant.
        created = crafted.created + timedelta(milliseconds=number)
        flow = [
            {
                "t": int((created - timedelta(days=days)).timestamp() * 1000),
                "ch": {
                    "s": source,
                    "m": medium,
                    **({} if campaign == "(none)" else {"cm": campaign}),
                },
            }
            for days, (source, medium, campaign) in crafted.touches
        ]
        lead.update(
            createdAt=format_timestamp(created),
            status=crafted.status,
            price=crafted.price,
            channelFlow=flow or None,
            attributionData={"gclid": "Cj0KCQ-crafted"} if crafted.gclid else None,
        )
    return leads


def channel_of(name: str, position: int | None) -> Channel:
    touches = LEADS[name].touches
    if position is not None:
        return touches[position - 1][1]
    return GOOGLE_CLICK if LEADS[name].gclid else NONE


def expected_attribution() -> dict[tuple[t.Any, ...], list[float]]:
    """channel_attribution by (month, model, channel): credited leads, conversions, value."""
    rows: dict[tuple[t.Any, ...], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for name, crafted in LEADS.items():
        month = crafted.created.date().replace(day=1)
        for model, credits in CREDITS[name].items():
            positions = range(1, len(credits) + 1) if crafted.touches else [None]
            for position, credit in zip(positions, credits, strict=True):
                if credit:
                    figures = rows[(month, model, *channel_of(name, position))]
                    figures[0] += credit
                    figures[1] += credit * (crafted.status in CONVERTED)
                    figures[2] += credit * (crafted.price or 0)
    return rows


class Marts(t.NamedTuple):
    credits: list[tuple[t.Any, ...]]
    attribution: list[tuple[t.Any, ...]]
    paths: list[tuple[t.Any, ...]]


CREDIT_QUERY = (
    "select lead_id, attribution_model, touch_position, source, medium, campaign, credit "
    "from {schema}.lead_attribution"
)
ATTRIBUTION_QUERY = (
    "select month, attribution_model, source, medium, campaign, credited_leads, "
    "credited_conversions, credited_value_cents, spend_cents, cost_per_lead_cents, "
    "cost_per_conversion_cents, roas from {schema}.channel_attribution"
)
PATH_QUERY = (
    "select month, path, leads, converted_leads, conversion_rate, value_cents "
    "from {schema}.conversion_paths"
)


def assert_marts_as_worked_out(marts: Marts) -> None:
    """The three marts hold exactly the figures worked out by hand above."""
    names = list(LEADS)
    loaded: dict[tuple[str, str], dict[int | None, tuple[Channel, float]]] = defaultdict(dict)
    for lead_id, model, position, *channel, credit in marts.credits:
        loaded[(names[lead_id - 1], model)][position] = (tuple(channel), credit)
    for name in names:
        for model in MODELS:
            credits = CREDITS[name][model]
            positions = range(1, len(credits) + 1) if LEADS[name].touches else [None]
            expected = {
                position: (channel_of(name, position), pytest.approx(credit, abs=1e-12))
                for position, credit in zip(positions, credits, strict=True)
                if credit
            }
            assert loaded[(name, model)] == expected, (name, model)
    assert len(marts.credits) == sum(len(by_touch) for by_touch in loaded.values())

    expected_rows = expected_attribution()
    attribution = {tuple(row[:5]): row[5:8] for row in marts.attribution}
    # Rows of spend without a lead aside (checked with the spend), the rest as worked out.
    with_leads = {key: figures for key, figures in attribution.items() if any(figures)}
    assert set(with_leads) == set(expected_rows)
    for key, figures in expected_rows.items():
        assert with_leads[key] == pytest.approx(figures, abs=1e-9), key

    paths: dict[tuple[date, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for name, crafted in LEADS.items():
        figures = paths[(crafted.created.date().replace(day=1), PATHS[name])]
        figures[0] += 1
        figures[1] += crafted.status in CONVERTED
        figures[2] += crafted.price or 0
    assert {row[:2]: (row[2], row[3], row[5]) for row in marts.paths} == {
        key: tuple(figures) for key, figures in paths.items()
    }
    for _, _, leads, converted, rate, _ in marts.paths:
        assert rate == pytest.approx(converted / leads)


def assert_spend_as_worked_out(marts: Marts) -> None:
    """Spend joined per month and channel, in cents, with its costs, under every model."""
    rows = {(row[0], row[1], *row[2:5]): row[5:] for row in marts.attribution}
    march, april = date(2026, 3, 1), date(2026, 4, 1)
    for model in MODELS:
        # google / cpc / brand_nl in March: 100 + 50 euros; leads "one touch" (a sale of
        # 1,000.00) and "one instant" (a conversion of 300.00, its first touch).
        brand = rows[(march, model, *GOOGLE_BRAND)]
        share = {"first_touch": 1.0, "last_touch": 0.0, "last_non_direct": 0.0}.get(model, 0.5)
        leads = 1 + share
        assert brand == pytest.approx(
            (
                leads,
                leads,
                100_000 + 30_000 * share,
                15_000,
                15_000 / leads,
                15_000 / leads,
                (100_000 + 30_000 * share) / 15_000,
            )
        ), model
        # A campaign with spend and no lead: its spend, no cost per lead, a ROAS of 0.
        assert rows[(april, model, "tiktok", "cpc", "awareness_test")] == (
            0,
            0,
            0,
            4_000,
            None,
            None,
            0,
        )
        # A blank campaign is `(none)`: the lead without a journey but with a gclid.
        assert rows[(march, model, *GOOGLE_CLICK)][3:6] == (3_000, 3_000, None)
        assert sum(row[8] or 0 for row in marts.attribution if row[1] == model) == (
            pytest.approx(sum(spend for *_, spend in SPEND) * 100)
        )
    # Channels without spend in a month have none, nor costs.
    spent = {(date.fromisoformat(day).replace(day=1), *channel) for day, *channel, _ in SPEND}
    spent = {(month, *channel[:2], channel[2] or "(none)") for month, *channel in spent}
    for month, _, *channel, figures in (
        (row[0], row[1], *row[2:5], row[8:]) for row in marts.attribution
    ):
        if (month, *channel) not in spent:
            assert figures == (None, None, None, None), (month, channel)
    # The five touches of April: google / cpc / zonnepanelen_generic twice (first and third).
    generic = {model: rows[(april, model, *GOOGLE_GENERIC)] for model in MODELS}
    assert generic["time_decay"][3:5] == pytest.approx((20_000, 20_000 / (5 / 31)))
    assert generic["last_touch"][:4] == (0, 0, 0, 20_000)


# DuckDB: the main job's warehouse.


def _duckdb_marts(warehouse: Path) -> Marts:
    return Marts(
        *(
            query_duckdb(warehouse, statement.format(schema="analytics"))
            for statement in (CREDIT_QUERY, ATTRIBUTION_QUERY, PATH_QUERY)
        )
    )


class Built(t.NamedTuple):
    warehouse: Path
    meltano: Meltano


@pytest.fixture(scope="module")
def crafted_duckdb(meltano_installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The crafted leads loaded into DuckDB and modelled, with spend in `ads.spend`."""
    workdir = tmp_path_factory.mktemp("attribution-duckdb")
    warehouse = workdir / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as db:
        db.execute("create schema ads")
        db.execute(SPEND_DDL.format(table="ads.spend"))
        db.executemany("insert into ads.spend values (?, ?, ?, ?, ?)", SPEND)
    meltano = Meltano(workdir / "meltano", meltano_installed)
    with Sandbox(Project(crafted_leads())) as sandbox:
        meltano(
            "run",
            "tap-leadtrackr",
            "target-duckdb",
            "dbt-duckdb:build",
            env=sandbox_env(
                sandbox, TARGET_DUCKDB_FILEPATH=warehouse, DBT_DUCKDB_AD_SPEND="ads.spend"
            ),
        )
    return Built(warehouse, meltano)


def test_each_model_credits_the_crafted_journeys_as_worked_out_in_duckdb(
    crafted_duckdb: Built,
) -> None:
    marts = _duckdb_marts(crafted_duckdb.warehouse)
    assert_marts_as_worked_out(marts)
    assert_spend_as_worked_out(marts)


def test_the_dbt_tests_fail_when_a_mart_loses_a_credit_a_lead_or_spend(
    crafted_duckdb: Built, tmp_path: Path
) -> None:
    warehouse = tmp_path / "broken.duckdb"
    shutil.copy(crafted_duckdb.warehouse, warehouse)
    with duckdb.connect(str(warehouse)) as db:
        # Half a credit gone from one lead; a channel's month (with spend) and a path dropped.
        db.execute(
            "update analytics.lead_attribution set credit = credit / 2 "
            "where lead_id = 3 and attribution_model = 'linear' and touch_position = 2"
        )
        db.execute(
            "delete from analytics.channel_attribution where attribution_model = 'time_decay' "
            "and source = 'google' and campaign = 'brand_nl'"
        )
        db.execute("delete from analytics.conversion_paths where path = '(none) / (none)'")
    result = crafted_duckdb.meltano(
        "invoke",
        "dbt-duckdb:test",
        env={"TARGET_DUCKDB_FILEPATH": warehouse, "DBT_DUCKDB_AD_SPEND": "ads.spend"},
        check=False,
    )
    log = result.stdout + result.stderr
    assert result.returncode != 0
    failed = set(re.findall(r"\d+ of \d+ FAIL \d+ (\w+)", log))
    assert failed == {
        "attribution_credits_sum_to_one",
        "channel_attribution_totals_equal_the_leads",
        "channel_attribution_holds_all_the_ad_spend",
        "conversion_paths_count_every_lead_once",
    }


def test_a_lead_deleted_in_leadtrackr_counts_nowhere(crafted_duckdb: Built, tmp_path: Path) -> None:
    # Flagged in the raw tables, as a reconcile flags a lead and its touchpoints: the
    # staging views leave them out, and so lead_journeys and every attribution mart.
    warehouse = tmp_path / "deleted.duckdb"
    shutil.copy(crafted_duckdb.warehouse, warehouse)
    left_out = list(LEADS).index("one instant") + 1
    with duckdb.connect(str(warehouse)) as db:
        for table, key in (("leads", "id"), ("lead_touchpoints", "lead_id")):
            db.execute(
                f"update leadtrackr.{table} set _sdc_deleted_at = current_timestamp "
                f"where {key} = ?",
                [left_out],
            )
    crafted_duckdb.meltano(
        "invoke",
        "dbt-duckdb",
        "build",
        env={"TARGET_DUCKDB_FILEPATH": warehouse, "DBT_DUCKDB_AD_SPEND": "ads.spend"},
    )
    journeys = query_duckdb(warehouse, "select lead_id from analytics.lead_journeys")
    assert left_out not in {lead_id for (lead_id,) in journeys}
    assert len(journeys) == len(LEADS) - 1
    marts = _duckdb_marts(warehouse)
    assert left_out not in {row[0] for row in marts.credits}
    # Its touches (google / cpc / brand_nl, then facebook) no longer count in March.
    brand = {
        row[1]: row[5]
        for row in marts.attribution
        if row[0] == date(2026, 3, 1) and tuple(row[2:5]) == GOOGLE_BRAND
    }
    assert brand == pytest.approx(dict.fromkeys(MODELS, 1.0))
    assert "google / cpc > facebook / cpc" not in {row[1] for row in marts.paths}
    assert sum(row[2] for row in marts.paths) == len(LEADS) - 1


def test_settings_that_cannot_work_stop_dbt_with_their_name(
    crafted_duckdb: Built, tmp_path: Path
) -> None:
    warehouse = tmp_path / "settings.duckdb"
    shutil.copy(crafted_duckdb.warehouse, warehouse)
    env = {"TARGET_DUCKDB_FILEPATH": warehouse}
    missing = crafted_duckdb.meltano(
        "invoke",
        "dbt-duckdb:run",
        env={**env, "DBT_DUCKDB_AD_SPEND": "ads.spend_typo"},
        check=False,
    )
    assert missing.returncode != 0
    assert "The dbt var `ad_spend` names ads.spend_typo, which is not in the warehouse" in (
        missing.stdout + missing.stderr
    )
    half_life = crafted_duckdb.meltano(
        "invoke",
        "dbt-duckdb",
        "run",
        "--vars",
        "{time_decay_half_life_days: 0}",
        env={**env, "DBT_DUCKDB_AD_SPEND": ""},
        check=False,
    )
    assert half_life.returncode != 0
    assert "The dbt var `time_decay_half_life_days` must be a positive number; it is 0" in (
        half_life.stdout + half_life.stderr
    )


def test_with_several_projects_spend_must_name_its_project(
    crafted_duckdb: Built, tmp_path: Path
) -> None:
    # Two projects whose leads share their ids, as the `projects` setting loads them.
    warehouse = tmp_path / "projects.duckdb"
    shutil.copy(crafted_duckdb.warehouse, warehouse)
    as_two_projects(warehouse)
    env = {"TARGET_DUCKDB_FILEPATH": warehouse, "DBT_DUCKDB_AD_SPEND": "ads.spend"}
    # Spend that does not say its project would count for each: refused.
    refused = crafted_duckdb.meltano("invoke", "dbt-duckdb:run", env=env, check=False)
    assert refused.returncode != 0
    assert "(dbt var `ad_spend`) has no `project` column, but the leads come from several" in (
        refused.stdout + refused.stderr
    )

    with duckdb.connect(str(warehouse)) as db:
        db.execute("alter table ads.spend add column project varchar default 'alpha'")
    crafted_duckdb.meltano("invoke", "dbt-duckdb:build", env=env)
    spend = query_duckdb(
        warehouse,
        "select project, attribution_model, sum(spend_cents), sum(credited_leads) "
        "from analytics.channel_attribution group by 1, 2 order by 1, 2",
    )
    total = sum(spend for *_, spend in SPEND) * 100
    assert spend == [
        (
            project,
            model,
            pytest.approx(total) if project == "alpha" else None,
            pytest.approx(len(LEADS)),
        )
        for project in ("alpha", "beta")
        for model in sorted(MODELS)
    ]


# PostgreSQL: target-postgres and dbt-postgres, spend in the loader's schema.


def test_each_model_credits_the_crafted_journeys_as_worked_out_in_postgres(
    meltano: Meltano,
    postgres_url: str,
    schema: str,
    tmp_path: Path,
) -> None:
    models = f"{schema}_models"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f"create schema {schema}")  # type: ignore[arg-type]
        connection.execute(SPEND_DDL.format(table=f"{schema}.ad_spend"))  # type: ignore[arg-type]
        with connection.cursor() as cursor:
            cursor.executemany(
                f"insert into {schema}.ad_spend values (%s, %s, %s, %s, %s)",  # type: ignore[arg-type]
                SPEND,
            )
    with Sandbox(Project(crafted_leads())) as sandbox:
        env = sandbox_env(
            sandbox,
            TARGET_POSTGRES_SQLALCHEMY_URL=sqlalchemy_url(postgres_url),
            TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA=schema,
            DBT_POSTGRES_AD_SPEND=f"{schema}.ad_spend",
            **dbt_postgres_env(postgres_url, source_schema=schema, models_schema=models),
        )
        try:
            meltano("run", "tap-leadtrackr", "target-postgres", "dbt-postgres:build", env=env)
            marts = Marts(
                *(
                    query(postgres_url, statement.format(schema=models))
                    for statement in (CREDIT_QUERY, ATTRIBUTION_QUERY, PATH_QUERY)
                )
            )
            # The HTML report reads PostgreSQL too (tests/e2e/test_html_report.py opens one).
            page = tmp_path / "report.html"
            written = subprocess.run(
                [
                    sys.executable,
                    "scripts/html_report.py",
                    postgres_url,
                    "--models-schema",
                    models,
                    "--output",
                    str(page),
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        finally:
            with psycopg.connect(postgres_url, autocommit=True) as connection:
                connection.execute(f"drop schema if exists {models} cascade")  # type: ignore[arg-type]
    assert_marts_as_worked_out(marts)
    assert_spend_as_worked_out(marts)

    assert written.returncode == 0, written.stdout + written.stderr
    html = page.read_text(encoding="utf-8")
    figures = json.loads(
        html.split('<script type="application/json" id="figures">')[1].split("</script>")[0]
    )
    assert figures["totals"] == {
        "leads": len(LEADS),
        "conversions": sum(crafted.status in CONVERTED for crafted in LEADS.values()),
        "value": sum(crafted.price or 0 for crafted in LEADS.values()) / 100,
        "first_month": "2026-03",
        "last_month": "2026-04",
    }
    # Most spend first: the campaign without leads, and the one whose lead is pending.
    assert figures["cost"]["without_conversions"] == [
        {"campaign": "tiktok / cpc / awareness_test", "spend": 40.0},
        {"campaign": "google / cpc / (none)", "spend": 30.0},
    ]
    # Without the marts, a one-line error that names the schema, not the URL's password.
    missing = subprocess.run(
        [sys.executable, "scripts/html_report.py", postgres_url, "--models-schema", models],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        f"No {models}.channel_attribution in PostgreSQL: build the dbt models of transform/ "
        "first (the job `leads-to-warehouse` does)."
    )
