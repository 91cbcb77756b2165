"""API keys, the bind decision of ``sistack serve``, the session secret, migration 0004."""

from __future__ import annotations

import datetime as dt
import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from sistack.cli import app
from sistack.config import Settings
from sistack.errors import AuthError, InputError, NotFound
from sistack.io.store import metadata
from sistack.io.store.metadata import MetadataStore
from sistack.service.auth import (
    KeyService,
    bind_decision,
    hash_key,
    is_loopback,
    session_secret,
)
from sistack.service.runs import RunService
from sistack.service.simulation import SimulationService
from tests.conftest import small_settings, three_groups


def said(result: Any) -> str:
    """What a command printed on stderr, without Rich's line wrapping."""
    return " ".join(result.stderr.split())


@pytest.fixture
def keys(settings: Settings) -> Iterator[KeyService]:
    store = MetadataStore(settings.db_url)
    yield KeyService(store)
    store.close()


@pytest.mark.parametrize(
    ("host", "keys_enabled", "refused"),
    [
        ("127.0.0.1", False, False),
        ("localhost", False, False),
        ("::1", False, False),
        ("[::1]", False, False),
        ("127.0.0.2", False, False),
        ("0.0.0.0", False, True),
        ("::", False, True),
        ("192.168.1.20", False, True),
        ("example.com", False, True),
        ("0.0.0.0", True, False),
        ("::", True, False),
        ("192.168.1.20", True, False),
    ],
)
def test_serve_binds_beyond_loopback_only_with_keys(
    host: str, keys_enabled: bool, refused: bool
) -> None:
    message = bind_decision(host, keys_enabled=keys_enabled)
    assert (message is not None) == refused
    assert is_loopback(host) == (host in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"))
    if message:
        assert host in message and "sistack keys create" in message


def test_serve_on_all_interfaces_without_keys_exits_2(cli_env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"], env=cli_env)
    assert result.exit_code == 2
    assert "no_keys_for_public_bind" in result.stderr
    assert "create a key with `sistack keys create" in said(result).lower()


@pytest.mark.parametrize(
    ("workspace", "role", "error"),
    [
        ("acme", "read", None),
        ("team-2_b", "write", None),
        ("Acme", "read", "invalid_workspace"),
        ("", "read", "invalid_workspace"),
        ("a" * 65, "read", "invalid_workspace"),
        ("../x", "read", "invalid_workspace"),
        ("acme", "admin", "invalid_role"),
    ],
)
def test_create_validates_workspace_and_role(
    keys: KeyService, workspace: str, role: str, error: str | None
) -> None:
    if error:
        with pytest.raises(InputError) as info:
            keys.create(workspace=workspace, role=role)
        assert info.value.code == error
        assert keys.list() == []
        return
    new = keys.create(workspace=workspace, role=role)
    (record,) = keys.list()
    assert record.key_hash == hash_key(new.secret) != new.secret
    assert (record.workspace, record.role, record.revoked_at) == (workspace, role, None)
    principal = keys.verify(new.secret)
    assert (principal.workspace, principal.role, principal.key_id) == (workspace, role, record.id)


def test_keys_are_distinct_and_unguessable(keys: KeyService) -> None:
    made = [keys.create(workspace="w", role="read") for _ in range(20)]
    assert len({m.secret for m in made}) == len({m.record.id for m in made}) == 20
    # 43 url-safe characters of secrets.token_urlsafe(32): 256 random bits after the id
    assert {len(m.secret.split("_", 2)[2]) for m in made} == {43}


def test_a_key_with_a_valid_id_but_another_secret_is_refused(keys: KeyService) -> None:
    new = keys.create(workspace="w", role="write")
    forged = f"sis_{new.record.id}_{'A' * 43}"
    with pytest.raises(AuthError) as info:
        keys.verify(forged)
    assert info.value.code == "invalid_key"
    keys.revoke(new.record.id)
    with pytest.raises(AuthError):
        keys.verify(new.secret)
    with pytest.raises(Exception, match="does not exist"):
        keys.revoke("000000000000")


def test_cli_keys_create_list_revoke(cli_env: dict[str, str], settings: Settings) -> None:
    runner = CliRunner()
    created = runner.invoke(
        app,
        ["keys", "create", "--workspace", "acme", "--role", "read", "--name", "BI"],
        env=cli_env,
    )
    assert created.exit_code == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("sis_") and "only time the key is shown" in said(created)
    assert "the server now requires a key on every API call" in said(created)
    key_id = secret.split("_")[1]
    listed = runner.invoke(app, ["keys", "list", "--json"], env=cli_env)

    (row,) = json.loads(listed.stdout)["items"]
    assert row == row | {
        "id": key_id,
        "prefix": f"sis_{key_id}_",
        "name": "BI",
        "workspace": "acme",
        "role": "read",
        "revoked": None,
    }
    assert secret not in listed.stdout
    table = runner.invoke(app, ["keys", "list"], env={**cli_env, "COLUMNS": "200"})
    assert key_id in table.stdout and secret not in table.stdout
    revoked = runner.invoke(app, ["keys", "revoke", key_id], env=cli_env)
    assert revoked.exit_code == 0 and "back in local mode" in said(revoked)
    after = json.loads(runner.invoke(app, ["keys", "list", "--json"], env=cli_env).stdout)
    assert after["items"][0]["revoked"] is not None
    unknown = runner.invoke(app, ["keys", "revoke", "ffffffffffff"], env=cli_env)
    assert unknown.exit_code == 2 and "key_not_found" in unknown.stderr
    bad = runner.invoke(
        app, ["keys", "create", "--workspace", "A B", "--role", "read"], env=cli_env
    )
    assert bad.exit_code == 2 and "invalid_workspace" in bad.stderr


def test_session_secret_is_generated_once_private_and_reused(tmp_path: Path) -> None:
    settings = small_settings(tmp_path / "home")
    first = session_secret(settings)
    path = settings.home / "session.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 48 and session_secret(settings) == first
    assert [p.name for p in settings.home.iterdir()] == ["session.key"]  # no temp file left
    given = small_settings(tmp_path / "other", session_secret="s" * 40)
    assert session_secret(given) == "s" * 40
    assert not (tmp_path / "other" / "session.key").exists()


def test_migration_0004_puts_existing_rows_in_the_default_workspace(tmp_path: Path) -> None:
    """A database made by the previous version (revision 0003) keeps its runs, now in
    workspace 'default', and gains the api_keys table."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(metadata.__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
        now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        conn.execute(
            text(
                "INSERT INTO datasets VALUES ('D1', 'a.csv', 'x', 1, 'csv', 'customers', 1, 1, "
                "'{}', :now)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO runs (id, dataset_id, name, status, stage, progress, config, "
                "created_at, claims) VALUES ('R1', 'D1', 'old', 'succeeded', 'done', 100, '{}', "
                ":now, 1)"
            ),
            {"now": now},
        )
    engine.dispose()
    store = MetadataStore(url)
    try:
        assert store.get_run("R1").workspace == "default"
        assert store.get_dataset("D1", workspace="default").workspace == "default"
        with pytest.raises(Exception, match="does not exist"):
            store.get_run("R1", workspace="acme")
        assert store.list_runs(workspace="acme") == ([], 0)
        assert not KeyService(store).enabled()
    finally:
        store.close()


def test_workspace_scoping_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    """The same scoping through the service on PostgreSQL: a foreign run, dataset or scenario
    is not found, lists are per workspace, the unscoped service (CLI, workers) sees all."""
    data = tmp_path / "customers.csv"
    three_groups(60, seed=5).write_csv(data)
    svc = RunService(small_settings(tmp_path / "home", database_url=postgres_url))
    try:
        a, b = svc.scoped("a"), svc.scoped("b")
        dataset, _ = a.add_dataset(data, keep=False)
        run = a.execute(a.create_run(dataset.id).id)
        scenario = SimulationService(a).save(
            run.id, "plan", {"levers": [{"lever": "price", "params": {"change": {"1": 0.05}}}]}
        )
        assert (run.status, run.workspace, scenario.workspace) == ("succeeded", "a", "a")
        for attempt in (
            lambda: b.get_run(run.id),
            lambda: b.insights(run.id),
            lambda: b.create_run(dataset.id),
            lambda: SimulationService(b).get(run.id, scenario.id),
            lambda: SimulationService(b).simulate(run.id, {}),
            lambda: b.delete_run(run.id),
        ):
            with pytest.raises(NotFound):
                attempt()
        assert b.list_runs() == ([], 0)
        assert [r.id for r in a.list_runs()[0]] == [run.id]
        assert [r.id for r in svc.list_runs()[0]] == [run.id]
        assert svc.get_run(run.id).workspace == "a"
    finally:
        svc.close()


def test_cli_lists_every_workspace_or_one(
    cli_env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    """The local CLI is the administrator: it lists every workspace's runs, or one's."""
    data = tmp_path / "customers.csv"
    three_groups(45, seed=2).write_csv(data)
    svc = RunService(settings)
    try:
        made = {}
        for name in ("a", "b"):
            scoped = svc.scoped(name)
            dataset, _ = scoped.add_dataset(data, keep=False)
            made[name] = scoped.create_run(dataset.id).id
    finally:
        svc.close()
    runner = CliRunner()
    every = json.loads(runner.invoke(app, ["runs", "list", "--json"], env=cli_env).stdout)
    assert {(r["run_id"], r["workspace"]) for r in every["items"]} == {
        (made["a"], "a"),
        (made["b"], "b"),
    }
    only = runner.invoke(app, ["runs", "list", "--json", "--workspace", "b"], env=cli_env)
    assert [(r["run_id"], r["workspace"]) for r in json.loads(only.stdout)["items"]] == [
        (made["b"], "b")
    ]


def test_cli_run_into_a_workspace(
    cli_env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    data = tmp_path / "customers.csv"
    three_groups(45, seed=2).write_csv(data)
    runner = CliRunner()
    made = runner.invoke(app, ["run", str(data), "--workspace", "acme", "--json"], env=cli_env)
    assert made.exit_code == 0, made.stderr
    run_id = json.loads(made.stdout)["run_id"]
    bad = runner.invoke(app, ["run", str(data), "--workspace", "Acme!"], env=cli_env)
    assert bad.exit_code == 2 and "invalid_workspace" in bad.stderr
    svc = RunService(settings)
    try:
        assert svc.get_run(run_id).workspace == "acme"
        assert svc.scoped("acme").list_runs()[1] == 1
        assert svc.scoped("default").list_runs()[1] == 0  # the refused run was never made
    finally:
        svc.close()
