"""Keeping secrets and filter values out of every log line and error message.

The API key travels in a header, the filters (emails, phone numbers, search text) in the
query string: messages name a path, never a URL with its query, and text the tap did not
write itself (a server's message, a library's exception) is redacted before it is shown.
"""

from __future__ import annotations

import logging
import re
import sys
import typing as t
from urllib.parse import quote_plus

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

#: Settings whose values no message may show: the key, and filters on personal data.
PRIVATE_SETTINGS = ("api_key", "email", "phone", "search", "unique_identifier", "form_name")
#: urllib3's loggers that log URLs, query included (every request line, at DEBUG).
URL_LOGGERS = ("urllib3.connectionpool", "urllib3.poolmanager", "urllib3.util.retry")

_QUERY = re.compile(r"\?[^\s'\")]*")


def secret_values(config: t.Mapping[str, t.Any]) -> list[str]:
    """Every API key of the config, as given and stripped: no message may show one."""
    key = str(config.get("api_key") or "")
    keys = [key, key.strip()]
    for project in config.get("projects") or []:
        if isinstance(project, dict) and isinstance(project_key := project.get("api_key"), str):
            keys += [project_key, project_key.strip()]
    return [key for key in dict.fromkeys(keys) if key.strip()]


def hide_query(text: str) -> str:
    """Drop the query strings from text: they hold the filter values."""
    return _QUERY.sub("", text)


def redact(text: str, config: t.Mapping[str, t.Any]) -> str:
    """Hide query strings and the values of `PRIVATE_SETTINGS` in text the tap did not write."""
    text = hide_query(text)
    for key in secret_values(config):
        for shown in (key, quote_plus(key)):
            text = text.replace(shown, "<api_key>")
    for setting in PRIVATE_SETTINGS:
        value = config.get(setting)
        if setting != "api_key" and isinstance(value, str) and value:
            for shown in (value, quote_plus(value)):
                text = text.replace(shown, f"<{setting}>")
    return text


class HideQueries(logging.Filter):
    """Drops query strings from log records (urllib3 logs each request's URL at DEBUG).

    A filter rather than a quieter logger: whoever turned urllib3's logging on still
    sees every request, only without the filter values.
    """

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "?" in message:
            record.msg, record.args = hide_query(message), None
        return True


_HIDE_QUERIES = HideQueries()


def hide_queries_in_http_logs() -> None:
    """Install `HideQueries` on urllib3's loggers that log URLs; doing it again is a no-op."""
    for name in URL_LOGGERS:
        logging.getLogger(name).addFilter(_HIDE_QUERIES)
