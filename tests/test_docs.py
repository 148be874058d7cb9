"""The docs can't drift: every command has help with an example and a row in the README's table."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from photosearch.cli.main import cli

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_command_is_in_the_readme_table_and_has_help_with_an_example():
    rows = set(re.findall(r"^\| `photosearch (\w+)", README.read_text(), flags=re.M))
    assert rows == set(cli.commands), f"README's command table vs the CLI: {sorted(rows ^ set(cli.commands))}"
    for name in cli.commands:
        result = CliRunner().invoke(cli, [name, "--help"])
        assert result.exit_code == 0 and "Example:" in result.stdout, name
        assert f"photosearch {name}" in result.stdout.split("Example:", 1)[1], name
