"""One error shape for every 4xx: `{"error": ..., "errors": [{"field", "reason"}]}`."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from pydantic import ValidationError

from cockpit.api.jsonresponse import JsonResponse

__all__ = ["ApiError", "describe_decode_error", "describe_validation", "error_response"]


class ApiError(Exception):
    """Raised by routes; rendered as a JSON error naming the field and the reason."""

    def __init__(self, status: int, error: str, field: str = "", reason: str = "") -> None:
        super().__init__(f"{status} {error}: {field} {reason}")
        self.status = status
        self.error = error
        self.errors = [{"field": field, "reason": reason}] if field or reason else []

    def summary(self) -> str:
        """Short form for the reject counters: the error and the first field."""
        return f"{self.error}: {self.errors[0]['field']}" if self.errors else self.error


def describe_validation(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    out = []
    for err in exc.errors(include_url=False)[:20]:
        loc = ".".join(str(p) for p in err["loc"])
        field = f"{prefix}{loc}" if loc else prefix.rstrip(".") or "body"
        out.append({"field": field, "reason": err["msg"]})
    return out


_AT = re.compile(r"^(?P<reason>.*?)(?: - at `(?P<path>[^`]*)`(?: in `(?P<outer>[^`]*)`)?)?$", re.S)
_NAMED = re.compile(r"(?:unknown|missing required) field `(?P<name>[^`]+)`")


def describe_decode_error(exc: msgspec.DecodeError, prefix: str = "") -> list[dict[str, str]]:
    """msgspec's one message (`Expected ... - at `$[1].position.lat``) as field + reason.

    Paths use the dotted form of the other errors (`1.position.lat`); a field that is
    missing or unknown is named itself, not its parent object.
    """
    m = _AT.match(str(exc))
    assert m is not None  # the pattern matches any string
    reason = m["reason"]
    path = m["path"]
    if path == "key":  # a bad key of a mapping: name the mapping
        path, reason = m["outer"], f"key: {reason}"
    # `[...]` is msgspec's "some key of this mapping": shown as `*` (`readings.*.value`).
    path = (path or "$")[1:].replace("[...]", ".*")
    parts = [p for p in re.split(r"[.\[\]]+", path) if p]
    if (named := _NAMED.search(reason)) is not None:
        parts.append(named["name"])
    loc = ".".join(parts)
    if not isinstance(exc, msgspec.ValidationError):
        loc = ""  # malformed JSON has a byte offset, not a field
    field = f"{prefix}{loc}" if loc else prefix.rstrip(".") or "body"
    return [{"field": field, "reason": reason}]


def error_response(status: int, error: str, errors: list[dict[str, Any]]) -> JsonResponse:
    return JsonResponse({"error": error, "errors": errors}, status_code=status)
