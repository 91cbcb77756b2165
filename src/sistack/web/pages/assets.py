"""The vega / vega-lite / vega-embed bundle, served by the app itself (no CDN: works offline).

vl-convert builds the bundle (about 900 kB, 250 kB gzipped) in about two seconds, holding the
interpreter while it does. It is therefore built once per installation: kept in
``<home>/cache/`` under a name that carries the vl-convert and Vega-Lite versions, and in memory
with its gzip, and served with a long cache lifetime (the page's URL carries the app version).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from importlib import metadata
from pathlib import Path

from fastapi import APIRouter, Request, Response

from sistack.io.exports.charts import VL_VERSION, vega_bundle
from sistack.io.store.artifacts import write_atomically

router = APIRouter(include_in_schema=False)
MEDIA_TYPE = "text/javascript; charset=utf-8"


def bundle_path(home: Path) -> Path:
    version = metadata.version("vl-convert-python")
    return home / "cache" / f"vega-bundle-{version}-vl{VL_VERSION}.js"


@functools.cache
def _bundle(path: Path) -> tuple[bytes, bytes, str]:
    """The bundle, its gzip and its ETag; read from ``path``, or built and written there."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raw = vega_bundle().encode("utf-8")
        write_atomically(path, lambda tmp: tmp.write_bytes(raw))  # readers never see half
    packed = gzip.compress(raw, compresslevel=6, mtime=0)
    return raw, packed, hashlib.sha256(raw).hexdigest()[:16]


@router.get("/vendor/vega-bundle.js")
def vega(request: Request) -> Response:
    raw, packed, etag = _bundle(bundle_path(request.app.state.service.settings.home))
    headers = {
        "cache-control": "public, max-age=604800",
        "etag": f'"{etag}"',
        "vary": "accept-encoding",
    }
    if request.headers.get("if-none-match") == f'"{etag}"':
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["content-encoding"] = "gzip"
        return Response(packed, media_type=MEDIA_TYPE, headers=headers)
    return Response(raw, media_type=MEDIA_TYPE, headers=headers)
