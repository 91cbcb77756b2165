"""Settings: one object, read from ``SISTACK_*`` environment variables at the edge and passed in."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from sistack.errors import InputError


class Settings(BaseSettings):
    """Every tunable of the product. Domain code receives the values it needs as arguments."""

    model_config = SettingsConfigDict(env_prefix="SISTACK_", extra="ignore")

    @classmethod
    def from_env(cls) -> Settings:
        """The settings of this process's ``SISTACK_*`` variables; a bad value is an
        ``invalid_setting`` error naming the variable (CLI exit code 2), not a traceback."""
        try:
            return cls()
        except ValidationError as exc:
            problems = [
                f"SISTACK_{'_'.join(str(p) for p in e['loc'][:1]).upper()}: "
                f"{str(e['msg']).removeprefix('Value error, ')}"
                for e in exc.errors()
            ]
            raise InputError(
                "Invalid setting: " + "; ".join(problems) + ". Fix or unset the variable.",
                code="invalid_setting",
                details={"settings": [str(e["loc"][0]) for e in exc.errors() if e["loc"]]},
            ) from None

    home: Path = Field(default_factory=lambda: Path.home() / ".sistack")
    database_url: str | None = None
    artifact_root: Path | None = None

    # Reading limits, enforced while reading.
    max_upload_bytes: int = 2 * 1024**3
    max_columns: int = 2000
    max_cell_chars: int = 1_000_000
    max_xlsx_uncompressed_bytes: int = 4 * 1024**3
    max_xlsx_ratio: int = 200
    # CSV and Parquet files larger than this are scanned lazily (bounded memory) rather than
    # read whole; the results are the same either way.
    stream_above_bytes: int = Field(default=256 * 1024**2, ge=0)
    # Files read into memory at once by one process (uploads being inspected, scoring); more
    # wait their turn, so memory stays bounded however many uploads arrive together.
    concurrent_reads: int = Field(default=2, ge=1)

    # Segmentation defaults.
    k_min: int = 2
    k_max: int = 8
    seed: int = 42
    selection_sample: int = 20_000
    silhouette_sample: int = 5_000
    fit_sample: int = 200_000
    stability_resamples: int = 20
    stability_sample: int = 5_000

    # Serving.
    host: str = "127.0.0.1"
    port: int = 8000
    job_workers: int = 1
    # Production: "inline" runs jobs on threads of the API process (one process, the laptop);
    # "queue" makes the API only enqueue, and ``sistack worker`` processes execute.
    execution: Literal["inline", "queue"] = "inline"
    workers: int = Field(default=1, ge=1)  # API processes of ``sistack serve``
    worker_poll: float = Field(default=1.0, gt=0)  # seconds between claims on an empty queue
    heartbeat_seconds: float = Field(default=10.0, gt=0)
    heartbeat_timeout: float = Field(default=60.0, gt=0)  # older heartbeat => run interrupted
    log_format: Literal["text", "json"] = "text"
    # Browser origins allowed to call the API from another site (CORS), comma-separated, e.g.
    # "https://bi.example.com". Empty: same origin only. Cookies are never sent cross-origin;
    # such callers authenticate with an API key header.
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Access control (see service/auth.py). The web session cookie is signed with
    # ``session_secret``; without one, a secret is generated once into <home>/session.key (0600).
    session_secret: SecretStr | None = None
    session_max_age: int = Field(default=12 * 3600, gt=0)  # seconds a web login lasts
    session_https_only: bool = False  # set behind HTTPS: the cookie is then never sent in clear

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(
                    f"allowed origin '{origin[:80]}' must start with http:// or https://"
                )
        return value

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'sistack.db'}"

    @property
    def artifacts(self) -> Path:
        return self.artifact_root or (self.home / "runs")

    @property
    def datasets_dir(self) -> Path:
        return self.home / "datasets"

    @property
    def exports_dir(self) -> Path:
        """Cache of export files (PDF, workbook, CSV...), one folder per run; safe to delete."""
        return self.home / "exports"
