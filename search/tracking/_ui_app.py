"""The app `cnn-search ui` serves without ``--allow-writes``: MLflow's own, read-only (search/tracking/_ui_guard.py).

Imported only by MLflow's server processes (MLflow app :data:`search.tracking._ui_guard.APP_NAME`),
never by the CLI. Every HTTP request passes to MLflow's app (its Host and origin checks included)
unless it would change the store: then it is answered 403 with MLflow's JSON error shape
(``PERMISSION_DENIED``), the store untouched. What changes, decided from the method and the path
alone: GET, HEAD and OPTIONS never do; POST does, except MLflow's POST reads (the ``.../search``
endpoints, ``/graphql``, whose only mutations are searches, ``get-latest-versions``,
``batchGetInfos``, ``traces/metrics``, ``presigned-download-url``); PUT, PATCH and DELETE always do.
A read MLflow adds later as a POST is refused until listed here: refusing too much is the safe side.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mlflow.server.fastapi_app import app as mlflow_app

_POST_READS = re.compile(
    r".*/(graphql|[\w-]*search[\w-]*|get-latest-versions|batchGetInfos|traces/metrics|presigned-download-url)/?"
)
MESSAGE = (
    "cnn-search ui is read-only: this request would change the store. "
    "Restart it with --allow-writes to allow changes (anyone who reaches the port could then make them)"
)


def changes(method: str, path: str) -> bool:
    """Whether a request would change the store (see the module docstring)."""
    if method in ("GET", "HEAD", "OPTIONS"):
        return False
    return not (method == "POST" and _POST_READS.fullmatch(path))


class ReadOnly:
    """An ASGI app that refuses, with 403, every request to ``app`` that :func:`changes` the store."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and changes(scope["method"], scope["path"]):
            body = json.dumps({"error_code": "PERMISSION_DENIED", "message": MESSAGE}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 403, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


app = ReadOnly(mlflow_app)
