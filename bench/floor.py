"""The floor: the least any Python program must do for what the tap does.

Run: .venv/bin/python bench/floor.py --config cfg.json > /dev/null

It fetches the leads page by page exactly as the tap asks for them (one `requests.Session`,
`page`, `limit`, `sort=createdAt:asc`, `X-API-Key`), decodes each page with `json`, and
writes one Singer RECORD line per lead and one STATE line per page. No schema, no
validation, no retries: `bench/bench.py` compares the tap's CPU against this loop's.
"""

from __future__ import annotations

import argparse
import json
import sys

import requests

LEADS_PATH = "/api/leads/getLeads"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the tap's config file")
    options = parser.parse_args(argv)
    with open(options.config, encoding="utf-8") as file:
        config = json.load(file)
    url = config["api_url"].rstrip("/") + LEADS_PATH
    limit = int(config.get("page_size", 100))
    write = sys.stdout.write
    with requests.Session() as session:
        session.headers["X-API-Key"] = config["api_key"]
        page = 1
        while True:
            params: dict[str, str | int] = {"page": page, "limit": limit, "sort": "createdAt:asc"}
            response = session.get(url, params=params, timeout=60)
            response.raise_for_status()
            body = json.loads(response.content)
            leads = body["leads"]
            for lead in leads:
                write(json.dumps({"type": "RECORD", "stream": "leads", "record": lead}) + "\n")
            if leads:
                bookmark = {
                    "replication_key": "createdAt",
                    "replication_key_value": leads[-1]["createdAt"],
                }
                state = {"type": "STATE", "value": {"bookmarks": {"leads": bookmark}}}
                write(json.dumps(state) + "\n")
            if not body["hasMore"]:
                return 0
            page += 1


if __name__ == "__main__":
    sys.exit(main())
