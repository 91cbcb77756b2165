"""Settings from the environment: a bad value names its variable and what to fix."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sistack.cli import app as cli_app
from sistack.config import Settings
from sistack.errors import InputError

BAD = [
    ("SISTACK_ALLOWED_ORIGINS", "ftp://x", "must start with http:// or https://"),
    ("SISTACK_K_MAX", "eight", "valid integer"),
    ("SISTACK_EXECUTION", "cluster", "'inline' or 'queue'"),
]


@pytest.mark.parametrize(("name", "value", "says"), BAD)
def test_a_bad_variable_is_an_input_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(InputError) as caught:
        Settings.from_env()
    assert caught.value.code == "invalid_setting"
    assert f"{name}: " in caught.value.message and says in caught.value.message
    assert caught.value.details == {"settings": [name.removeprefix("SISTACK_").lower()]}


@pytest.mark.parametrize(("name", "value", "says"), BAD[:2])
def test_the_cli_exits_2_with_the_message(
    tmp_path: object, name: str, value: str, says: str
) -> None:
    result = CliRunner().invoke(
        cli_app, ["runs", "list"], env={"SISTACK_HOME": str(tmp_path), name: value}
    )
    assert result.exit_code == 2
    assert "invalid_setting" in result.output and name in result.output
    assert "Traceback" not in result.output


def test_good_values_are_read() -> None:
    env = {"SISTACK_ALLOWED_ORIGINS": "https://a.example.com, http://b:8080/"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        settings = Settings.from_env()
    assert settings.allowed_origins == ["https://a.example.com", "http://b:8080"]
