"""The ``sistack`` command line: thin commands over the service layer (see :mod:`.app`)."""

from sistack.cli import doctor, insights, keys, runs, simulation, worker  # noqa: F401 - commands
from sistack.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    app()
