"""`python -m noteforge`: the same as the `noteforge` command."""

from noteforge.cli.app import run

run()
