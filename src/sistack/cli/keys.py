"""``sistack keys``: create, list and revoke API keys (access control, see service/auth.py).

These commands, like every local command, act as the machine's administrator: whoever can run
``sistack`` here can read the metadata database anyway. Keys only guard the network server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from sistack.cli.app import JsonFlag, app, emit, err, guard, out
from sistack.config import Settings

if TYPE_CHECKING:
    from sistack.service.auth import KeyService

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@contextmanager
def open_keys() -> Iterator[KeyService]:
    from sistack.io.store.metadata import MetadataStore
    from sistack.service.auth import KeyService

    store = MetadataStore(Settings.from_env().db_url)
    try:
        yield KeyService(store)
    finally:
        store.close()


@keys_app.command("create")
@guard
def keys_create(
    workspace: Annotated[
        str, typer.Option(help="Workspace the key can see (lower-case letters, digits, - _).")
    ],
    role: Annotated[str, typer.Option(help="read (results, simulate) or write (everything).")],
    name: Annotated[str | None, typer.Option(help="A label for listings.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a key and print it once (only its hash is stored: copy it now)."""
    with open_keys() as keys:
        first = not keys.enabled()
        new = keys.create(workspace=workspace, role=role, name=name)
    r = new.record
    if as_json:
        emit(
            {
                "id": r.id,
                "key": new.secret,
                "name": r.name,
                "workspace": r.workspace,
                "role": r.role,
            }
        )
        return
    out.print(new.secret, highlight=False, soft_wrap=True)
    err.print(
        f"Created key {r.id} ({escape(r.name)}): workspace '{r.workspace}', role {r.role}. "
        "This is the only time the key is shown."
    )
    err.print(
        "Use it: curl -H 'Authorization: Bearer <key>' http://127.0.0.1:8000/api/v1/runs, "
        "or paste it at /login in the web UI."
    )
    if first:
        err.print(
            "[yellow]This is the first key: the server now requires a key on every API call "
            "and a login in the web UI.[/]"
        )


@keys_app.command("list")
@guard
def keys_list(as_json: JsonFlag = False) -> None:
    """List keys: id, prefix, name, workspace, role, created, revoked (never the secret)."""
    with open_keys() as keys:
        records = keys.list()
    rows = [
        {
            "id": r.id,
            "prefix": f"sis_{r.id}_",
            "name": r.name,
            "workspace": r.workspace,
            "role": r.role,
            "created": r.created_at.isoformat(),
            "revoked": r.revoked_at.isoformat() if r.revoked_at else None,
        }
        for r in records
    ]
    if as_json:
        emit({"items": rows})
        return
    active = sum(1 for r in records if r.revoked_at is None)
    table = Table(title=f"{len(records)} keys ({active} active)")
    for col in ("id", "prefix", "name", "workspace", "role", "created", "revoked"):
        table.add_column(col)
    for r in records:
        table.add_row(
            r.id,
            f"sis_{r.id}_…",
            escape(r.name),
            r.workspace,
            r.role,
            r.created_at.strftime("%Y-%m-%d %H:%M"),
            r.revoked_at.strftime("%Y-%m-%d %H:%M") if r.revoked_at else "",
        )
    out.print(table)
    if not active:
        err.print("No active key: the server runs in local mode (no auth, 127.0.0.1 only).")


@keys_app.command("revoke")
@guard
def keys_revoke(key_id: str, as_json: JsonFlag = False) -> None:
    """Revoke a key (by its id): requests and web sessions using it are refused at once."""
    with open_keys() as keys:
        record = keys.revoke(key_id)
        remaining = keys.enabled()
    if as_json:
        emit(
            {
                "id": record.id,
                "revoked": record.revoked_at.isoformat() if record.revoked_at else None,
            }
        )
        return
    err.print(f"Revoked key {record.id} ({escape(record.name)}).")
    if not remaining:
        err.print(
            "[yellow]No active key is left: the server is back in local mode (no auth; "
            "`sistack serve` binds to 127.0.0.1 only).[/]"
        )
