"""The docs keep up with the code: every hook, every CLI command, the two set-up commands."""

from __future__ import annotations

import re
from pathlib import Path

from inpaint_core import hookspecs
from inpaint_core.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def hook_names() -> list[str]:
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    return [name for name, value in vars(hookspecs).items() if hasattr(value, marker)]


def test_every_hook_has_a_docs_entry_and_a_since_version() -> None:
    guide = (ROOT / "docs" / "plugins.md").read_text()
    assert hook_names() == ["register_inpaint_methods"]
    for name in hook_names():
        assert f"## {name}" in guide, f"docs/plugins.md has no section for hook {name}"
        assert "Since:" in getattr(hookspecs, name).__doc__


def test_every_cli_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    for command in subparsers.choices:
        assert f"inpaint {command}" in readme, f"README does not show `inpaint {command}`"


def test_readme_has_exactly_the_two_setup_commands_and_ci_uses_one() -> None:
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n *```", setup, flags=re.S)
    assert [command.strip() for command in commands] == ["make demo", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", text, flags=re.S)


def test_the_weights_guide_runs_offline(tmp_path: Path, monkeypatch, capsys) -> None:
    """docs/weights.md's "Try it without a download" block, run as written (out/ -> tmp)."""
    import shlex

    from inpaint_core.cli import main

    guide = (ROOT / "docs" / "weights.md").read_text()
    section = guide.split("## Try it without a download", 1)[1]
    (block,) = _bash_blocks(section)
    monkeypatch.chdir(ROOT)
    lines = [line for line in block.splitlines() if line.strip()]
    assert len(lines) == 3
    for line in lines:
        words = [w.replace("out/", f"{tmp_path}/") for w in shlex.split(line)]
        assert words[0] == "inpaint"
        assert main(words[1:]) == 0, line
    assert (tmp_path / "lama-tiny.png").is_file()
    assert "method: lama" in capsys.readouterr().out
