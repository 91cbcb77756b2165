"""Cross-origin calls: only the configured origins, never with cookies."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sistack.api.app import create_app
from sistack.config import Settings
from tests.conftest import small_settings

ALLOWED = "https://bi.example.com"


def client_for(home: Path, origins: str) -> TestClient:
    settings = small_settings(
        home, allowed_origins=Settings(allowed_origins=origins).allowed_origins
    )
    return TestClient(create_app(settings))


def preflight(client: TestClient, origin: str) -> dict[str, str]:
    response = client.options(
        "/api/v1/runs",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    return {k.lower(): v for k, v in response.headers.items()} | {
        "status": str(response.status_code)
    }


def test_an_allowed_origin_gets_its_preflight_and_answers(tmp_path: Path) -> None:
    with client_for(tmp_path / "home", f"{ALLOWED}/, https://other.example.com") as client:
        headers = preflight(client, ALLOWED)
        assert headers["status"] == "200"
        assert headers["access-control-allow-origin"] == ALLOWED
        assert "POST" in headers["access-control-allow-methods"]
        assert "authorization" in headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in headers
        listing = client.get("/api/v1/runs", headers={"Origin": ALLOWED})
        assert listing.headers["access-control-allow-origin"] == ALLOWED


@pytest.mark.parametrize("origins", ["", ALLOWED])
def test_other_origins_get_no_cors_headers(tmp_path: Path, origins: str) -> None:
    with client_for(tmp_path / "home", origins) as client:
        headers = preflight(client, "https://evil.example.net")
        assert "access-control-allow-origin" not in headers
        listing = client.get("/api/v1/runs", headers={"Origin": "https://evil.example.net"})
        assert "access-control-allow-origin" not in {k.lower() for k in listing.headers}


def test_an_origin_that_is_not_a_web_address_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="must start with http:// or https://"):
        Settings(allowed_origins="bi.example.com")
