"""One error shape for every 4xx: `{"error": ..., "errors": [{"field", "reason"}]}`."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from cockpit.api.jsonresponse import JsonResponse

__all__ = ["ApiError", "describe_validation", "error_response"]


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


def error_response(status: int, error: str, errors: list[dict[str, Any]]) -> JsonResponse:
    return JsonResponse({"error": error, "errors": errors}, status_code=status)
