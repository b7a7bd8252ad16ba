"""Reading and checking request bodies: JSON objects, typed fields, and decoding options checked
by the runtime's own :class:`~export.runtime.DecodingOptions` (its ValueError messages become
422 answers naming the field)."""

from __future__ import annotations

import json

from export.runtime.options import OPTION_NAMES, DecodingOptions, resolve_options
from export.serve.errors import invalid, malformed, too_large


async def read_json(request, max_bytes: int) -> dict:
    """The request's JSON object; 413 past ``max_bytes``, 400 when it is not a JSON object."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large(f"the body has {declared} bytes; this service takes at most {max_bytes}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise too_large(f"the body is over {max_bytes} bytes, the most this service takes")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise malformed(f"malformed JSON: {error}") from None
    if not isinstance(data, dict):
        raise malformed(f"the body must be a JSON object, not {type(data).__name__}")
    return data


def only_fields(body: dict, fields: tuple[str, ...]) -> None:
    """422 naming the first key of ``body`` that is not one of ``fields`` (a typo is refused,
    not ignored)."""
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise invalid(unknown[0], f"unknown field {unknown[0]!r}; fields: {', '.join(fields)}")


def optional_str(body: dict, name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid(name, f"{name} must be a string, got {json.dumps(value)}")
    return value


def boolean(body: dict, name: str, default: bool = False) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise invalid(name, f"{name} must be true or false, got {json.dumps(value)}")
    return value


def texts(body: dict, name: str, max_items: int) -> tuple[list[str], bool]:
    """``body[name]`` as a list of strings, and whether it was one string; 422 when it is
    neither, 413 over ``max_items`` strings."""
    if name not in body:
        raise invalid(name, f"{name} is required: a string or a list of strings")
    value = body[name]
    if isinstance(value, str):
        return [value], True
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid(name, f"{name} must be a string or a list of strings")
    if len(value) > max_items:
        raise too_large(
            f"{name} has {len(value)} items; this service takes at most {max_items}", name
        )
    return value, False


def decoding_options(body: dict, kind: str, request_fields: tuple[str, ...]) -> DecodingOptions:
    """The decoding options in ``body`` (every key but ``request_fields``), checked for a model
    of ``kind``: 422 with the runtime's message, naming the field at fault."""
    settings = {k: v for k, v in body.items() if k not in request_fields}
    try:
        return resolve_options(None, settings, kind)
    except (ValueError, TypeError) as error:
        raise invalid(field_at_fault(settings, kind), str(error)) from None


def field_at_fault(settings: dict, kind: str) -> str | None:
    """The first setting that is wrong on its own (None: only a combination is wrong)."""
    for name, value in settings.items():
        if name not in OPTION_NAMES:
            return name
        try:
            DecodingOptions().replace(**{name: value}).check_for(kind)
        except (ValueError, TypeError):
            return name
    return None
