"""The kinds of bundle the service serves: ``model.json`` kind -> its :class:`ServedKind`.

A new family adds one route module (a ``ServedKind``: loader, batch runner, warm-up request,
routes) and one entry here."""

from __future__ import annotations

from export.serve.classify import CLASSIFICATION
from export.serve.forecast import FORECASTING
from export.serve.generate import LANGUAGE_MODEL
from export.serve.service import ServedKind
from export.serve.translate import TRANSLATION

SERVED_KINDS: dict[str, ServedKind] = {
    kind.kind: kind for kind in (TRANSLATION, LANGUAGE_MODEL, CLASSIFICATION, FORECASTING)
}
