"""``python -m sistack.cli``: the same as the ``sistack`` command."""

from sistack.cli import main

main()
