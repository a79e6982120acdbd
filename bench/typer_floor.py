"""The floor for bench_cli.py: the smallest typer app a noteforge command could
be (one str argument, one bool option), run in the same venv. Whatever it
costs, a typer CLI cannot avoid; noteforge's commands are measured against it."""

from typing import Annotated

import typer

app = typer.Typer(add_completion=False)


@app.command()
def main(
    image: Annotated[str, typer.Argument(help="A file.")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON.")] = False,
) -> None:
    """Print the argument."""
    print(image if not as_json else f'"{image}"')


if __name__ == "__main__":
    app()
