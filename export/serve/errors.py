"""The errors a request can get: one exception type carrying the HTTP status, a message a client
can act on, and the request field at fault (when there is one)."""

from __future__ import annotations


class ServiceError(Exception):
    """An HTTP error answer: ``{"error": message, "field": field}`` with ``status``."""

    def __init__(
        self,
        status: int,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers or {}

    def body(self) -> dict:
        body = {"error": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


def malformed(message: str) -> ServiceError:
    """400: the body is not JSON, or not a JSON object."""
    return ServiceError(400, message)


def invalid(field: str | None, message: str) -> ServiceError:
    """422: a field of the wrong type or value."""
    return ServiceError(422, message, field)


def too_large(message: str, field: str | None = None) -> ServiceError:
    """413: an input longer than the model or the service takes."""
    return ServiceError(413, message, field)


def busy(retry_after_s: int, message: str) -> ServiceError:
    """503: the queue is full; ``Retry-After`` says when to try again."""
    return ServiceError(503, message, headers={"Retry-After": str(retry_after_s)})


def timed_out(seconds: float) -> ServiceError:
    """504: the request did not finish within the service's time limit."""
    return ServiceError(504, f"the request did not finish within {seconds:g} s (--timeout-s)")
