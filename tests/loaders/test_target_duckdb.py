"""loaders/target-duckdb: the released loader's rows and keys, and every CSV line loaded."""

from __future__ import annotations

import copy
import typing as t
from pathlib import Path

import duckdb
import pytest
from leadtrackr_target_duckdb import HeaderlessCsvDbSync
from target_duckdb import add_metadata_columns_to_schema, add_metadata_values_to_record
from target_duckdb.db_sync import DbSync

from tap_leadtrackr.sandbox import Sandbox
from tests.conftest import config_for, run_tap
from tests.test_touchpoints import TOUCHPOINTS, catalog_selecting

# Values the released `record_to_flattened` treats each in its own way.
EDGE_VALUES: list[t.Any] = [0, 0.0, False, "", None, {}, [], {"a": [1, {"b": None}]}, [1], "x", 7]


def tap_messages(sandbox: Sandbox) -> tuple[dict[str, dict[str, t.Any]], list[dict[str, t.Any]]]:
    """SCHEMA message per stream and every RECORD message of a sync of both streams."""
    config = config_for(sandbox)
    result = run_tap(config, catalog=catalog_selecting(config, "leads", TOUCHPOINTS))
    assert result.error is None
    schemas = {m["stream"]: m for m in result.messages if m["type"] == "SCHEMA"}
    records = [m for m in result.messages if m["type"] == "RECORD"]
    assert set(schemas) == {"leads", TOUCHPOINTS}
    return schemas, records


def both(schema_message: dict[str, t.Any], **config: t.Any) -> tuple[DbSync, DbSync]:
    """The released `DbSync` and the layer's, for one stream, as target-duckdb builds them."""
    config = {"filepath": "unused.duckdb", "default_target_schema": "leadtrackr", **config}
    made = []
    for cls in (DbSync, HeaderlessCsvDbSync):
        # As with `add_metadata_columns: true` in meltano.yml; the released code mutates it.
        message = add_metadata_columns_to_schema(copy.deepcopy(schema_message))
        made.append(cls(None, config, message))
    return made[0], made[1]


@pytest.mark.parametrize("flattening", [0, 1])
def test_keys_and_csv_rows_are_the_released_loaders(sandbox: Sandbox, flattening: int) -> None:
    schemas, messages = tap_messages(sandbox)
    syncs = {
        stream: both(message, data_flattening_max_level=flattening)
        for stream, message in schemas.items()
    }
    for message in messages:
        released, ours = syncs[message["stream"]]
        record = add_metadata_values_to_record(copy.deepcopy(message))
        assert ours.record_primary_key_string(record) == released.record_primary_key_string(record)
        assert ours.record_to_flattened(record) == released.record_to_flattened(record)

    # Every kind of value in every column, and fields missing or not in the schema.
    released, ours = syncs["leads"]
    first = messages[0]["record"]
    for value in EDGE_VALUES:
        record = {**{name: value for name in first}, "id": 5, "notInTheSchema": value}
        assert ours.record_to_flattened(record) == released.record_to_flattened(record)
    assert ours.record_to_flattened({"id": 1}) == released.record_to_flattened({"id": 1})
    with pytest.raises(KeyError):
        ours.record_primary_key_string({"status": "open"})


def test_the_first_line_of_a_batch_is_a_row_not_a_header(tmp_path: Path) -> None:
    schema = {"properties": {"code": {"type": "string"}, "label": {"type": ["null", "string"]}}}
    message = {"stream": "codes", "schema": schema, "key_properties": ["code"]}
    records = [{"code": f"c{i}", "label": f"code {i}"} for i in range(50)]
    with duckdb.connect(str(tmp_path / "w.duckdb")) as connection:
        loaded = {}
        for cls in (DbSync, HeaderlessCsvDbSync):
            schema_name = cls.__name__.lower()
            sync = cls(
                connection, {"filepath": "w.duckdb", "default_target_schema": schema_name}, message
            )
            sync.create_schema_if_not_exists()
            sync.sync_table()
            sync.load_rows(records, len(records), str(tmp_path))
            loaded[cls] = connection.execute(f"select count(*) from {schema_name}.codes").fetchone()

    assert loaded[HeaderlessCsvDbSync] == (50,)
    assert loaded[DbSync] == (49,)  # the released loader, on the same DuckDB
    assert list(tmp_path.glob("*.csv")) == []
