"""``sistack doctor``: each kind of damage to the artifact root is found, and a clean home passes.

One home with a succeeded run (and a failed one) is built per module and copied for each case, so
every case damages its own copy in one precise way and checks the one problem it must cause.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sistack.cli import app as cli_app
from sistack.config import Settings
from sistack.io.store.artifacts import sha256_file
from sistack.service.doctor import diagnose
from sistack.service.runs import RunService, new_id
from tests.conftest import SMALL_ENV, small_settings, three_groups

Damage = Callable[[Path, str, str], object]  # (artifact root, succeeded run id, failed run id)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A home with one succeeded run and one failed run (which has no directory)."""
    root = tmp_path_factory.mktemp("doctor")
    data, one = root / "customers.csv", root / "one.csv"
    three_groups(60, seed=3).write_csv(data)
    three_groups(60, seed=3).head(1).write_csv(one)
    svc = RunService(small_settings(root / "home"))
    try:
        dataset, _ = svc.add_dataset(data, keep=False)
        done = svc.execute(svc.create_run(dataset.id).id)
        tiny, _ = svc.add_dataset(one, keep=False)
        failed = svc.execute(svc.create_run(tiny.id).id)
    finally:
        svc.close()
    assert (done.status, failed.status, failed.error_code) == (
        "succeeded",
        "failed",
        "too_few_customers",
    )
    return root / "home", done.id, failed.id


@pytest.fixture
def home(template: tuple[Path, str, str], tmp_path: Path) -> tuple[Settings, str, str]:
    source, done, failed = template
    shutil.copytree(source, tmp_path / "home")
    return small_settings(tmp_path / "home"), done, failed


def report_of(settings: Settings) -> dict:
    svc = RunService(settings)
    try:
        return diagnose(svc.store, svc.artifacts).to_dict()
    finally:
        svc.close()


def flip_byte(root: Path, run: str, _: str) -> None:
    path = root / run / "assignments.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def plant_symlink(root: Path, run: str, _: str) -> None:
    target = root.parent.parent / "outside.json"
    target.write_text("{}")
    (root / run / "profiles.json").unlink()
    os.symlink(target, root / run / "profiles.json")


def bad_manifest(root: Path, run: str, _: str) -> None:
    (root / run / "manifest.json").write_text("{not json")


CASES: list[tuple[str, Damage, str, str]] = [
    ("flipped_byte", flip_byte, "changed_file", "{run}/assignments.parquet"),
    (
        "deleted",
        lambda r, run, _: (r / run / "model.json").unlink(),
        "missing_file",
        "{run}/model.json",
    ),
    (
        "extra",
        lambda r, run, _: (r / run / "notes.txt").write_text("hi"),
        "extra_file",
        "{run}/notes.txt",
    ),
    (
        "staging",
        lambda r, run, _: (r / ".staging" / f"{run}.ab12").mkdir(parents=True),
        "staging_leftover",
        ".staging/{run}.ab12",
    ),
    ("no_directory", lambda r, run, _: shutil.rmtree(r / run), "missing_directory", "{run}"),
    (
        "failed_with_dir",
        lambda r, _, failed: (r / failed).mkdir(),
        "unexpected_directory",
        "{failed}",
    ),
    ("orphan", lambda r, run, _: (r / new_id()).mkdir(), "unexpected_directory", "*"),
    ("symlink", plant_symlink, "symlink", "{run}/profiles.json"),
    ("manifest", bad_manifest, "unreadable_manifest", "{run}/manifest.json"),
]


def test_a_clean_home_passes(home: tuple[Settings, str, str]) -> None:
    settings, run, _ = home
    report = report_of(settings)
    manifest = json.loads((settings.artifacts / run / "manifest.json").read_bytes())
    assert report["problems"] == []
    assert (report["ok"], report["runs_checked"]) == (True, 1)
    assert report["files_checked"] == len(manifest["artifacts"]) == 9  # with the chart specs
    for name, entry in manifest["artifacts"].items():  # the manifest is what doctor trusts
        assert sha256_file(settings.artifacts / run / name) == entry["sha256"]


@pytest.mark.parametrize(
    ("damage", "kind", "where"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_damage_is_reported(
    home: tuple[Settings, str, str], damage: Damage, kind: str, where: str
) -> None:
    settings, run, failed = home
    damage(settings.artifacts, run, failed)
    report = report_of(settings)
    assert not report["ok"]
    assert [p["kind"] for p in report["problems"]] == [kind]
    problem = report["problems"][0]
    if where != "*":
        assert problem["path"] == where.format(run=run, failed=failed)
    assert problem["message"]
    if kind == "symlink":  # the link's target is never read or hashed
        assert report["files_checked"] == 8


def test_several_problems_are_all_listed(home: tuple[Settings, str, str]) -> None:
    settings, run, failed = home
    flip_byte(settings.artifacts, run, failed)
    (settings.artifacts / run / "insights.json").unlink()
    (settings.artifacts / ".staging" / "x").mkdir(parents=True)
    kinds = [p["kind"] for p in report_of(settings)["problems"]]
    assert kinds == ["missing_file", "changed_file", "staging_leftover"]


def test_cli_exit_codes_and_json(home: tuple[Settings, str, str]) -> None:
    settings, run, failed = home
    env = {"SISTACK_HOME": str(settings.home), **SMALL_ENV}
    runner = CliRunner()
    clean = runner.invoke(cli_app, ["doctor"], env=env)
    assert clean.exit_code == 0, clean.output
    assert "1 succeeded run(s), 9 file(s) verified" in " ".join(clean.stdout.split())
    flip_byte(settings.artifacts, run, failed)
    broken = runner.invoke(cli_app, ["doctor", "--json"], env=env)
    assert broken.exit_code == 3
    data = json.loads(broken.stdout)
    assert (data["ok"], [p["kind"] for p in data["problems"]]) == (False, ["changed_file"])
    plain = runner.invoke(cli_app, ["doctor"], env=env)
    assert plain.exit_code == 3
    assert "changed_file" in plain.stdout and "assignments.parquet" in plain.stdout
