"""Change a stored run behind the service's back, for tests of what reproduce reports.

``restate`` rewrites an artifact together with its manifest entry, so the run still reads back
without an integrity error (as a run written by another version would); ``with_k`` changes the
config the run is recomputed with. ``hashes_differing`` works out, from the two manifests,
which compared artifacts a reproduction must name.
"""

from __future__ import annotations

import json
from typing import Any

from sistack.io.store.artifacts import dump_json, sha256_file
from sistack.service.runs import COMPARED, RunService


def restate(svc: RunService, run_id: str, name: str, document: Any) -> None:
    """Replace a stored JSON artifact and its manifest entry (sha256, bytes) consistently."""
    path = svc.artifacts.path(run_id, name)
    path.write_bytes(dump_json(document))
    manifest_path = svc.artifacts.path(run_id, "manifest.json")
    manifest = json.loads(manifest_path.read_bytes())
    manifest["artifacts"][name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    manifest_path.write_bytes(dump_json(manifest))


def with_k(svc: RunService, run_id: str, k: int) -> None:
    """Store a fixed ``k`` in the run's config (the config reproduce recomputes with)."""
    config = svc.get_run(run_id).config
    svc.store.update_run(run_id, config={**config, "run": {**config["run"], "k": k}})


def other_k(k: int) -> int:
    """A valid number of segments different from ``k`` (the test settings allow 2..4)."""
    return 3 if k == 2 else 2


def hashes_differing(svc: RunService, run_id: str, new_run_id: str) -> list[str]:
    """The compared artifacts whose sha256 differs between the two runs' manifests, in
    ``COMPARED`` order; the new run's recorded hashes are checked against its files first."""
    old = svc.manifest(run_id)["artifacts"]
    new = svc.manifest(new_run_id)["artifacts"]
    for name in COMPARED:
        assert new[name]["sha256"] == sha256_file(svc.artifacts.path(new_run_id, name))
    return [n for n in COMPARED if n in old and old[n]["sha256"] != new[n]["sha256"]]
