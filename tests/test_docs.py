"""The docs keep up with the code: every hook, every CLI command, every shell command.

The shell commands run through ``tests/docs_runner.py``, whose docstring says how.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from inpaint_core import hookspecs
from inpaint_core.cli import build_parser

from .docs_runner import (
    CLOSED_PROXY,
    ROOT,
    SANDBOX_FOLDERS,
    Session,
    bash_blocks,
    commands,
    demo_recipe,
    small,
)

DOCUMENTS: tuple[Path, ...] = (
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "docs" / "methods").glob("*.md")),
)


#: Pages whose owners are still editing them, whose commands fail today, and why. Strict: the
#: test fails as soon as a page passes, so its entry is removed then.
KNOWN_FAILING: dict[str, str] = {}


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


@pytest.fixture
def session(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Session:
    """A fresh sandbox: copies of the sample files, ``out/``, a private home, no network."""
    for folder in SANDBOX_FOLDERS:
        ignore = shutil.ignore_patterns("corpus", "mural", "__pycache__", "*.zarr")
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=ignore)
    (tmp_path / "out").mkdir()
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("INPAINT_HOME", str(home / "inpaint"))
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, CLOSED_PROXY)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return Session(tmp_path, capsys, monkeypatch)


def test_small_rules_change_what_they_name() -> None:
    train = shlex.split("inpaint train edge-gan --steps 4000 --batch 8")
    assert small(train) == shlex.split("inpaint train edge-gan --steps 2 --batch 2")
    fixed = shlex.split("inpaint train glcic --size 128 --option image_size=128")
    assert small(fixed) == fixed
    first, resumed = (small(["inpaint", "train", "--steps", n])[-1] for n in ("20", "40"))
    assert (first, resumed) == ("1", "2")
    assert small(["inpaint", "evaluate", "--data", "d"])[-2:] == ["--size", "64"]
    user_mask = ["inpaint", "evaluate", "--data", "d", "--masks", "m.png"]
    assert small(user_mask) == user_mask
    script = "python benchmarks/attention_memory.py"
    assert small(shlex.split(f"{script} --sizes 256 512 --out x")) == shlex.split(
        f"{script} --sizes 256 --out x"
    )


def test_the_demo_recipe_restores_with_a_named_method_and_writes_the_sheet() -> None:
    steps = [" ".join(command.words) for command in demo_recipe()]
    assert steps[1].startswith("inpaint run sample_data/astronaut_damaged.png")
    assert "--method biharmonic" in steps[1]
    assert any("contact_sheet.py" in step for step in steps)


def _document_param(path: Path) -> object:
    name = str(path.relative_to(ROOT))
    if name in KNOWN_FAILING:
        return pytest.param(
            path, id=name, marks=pytest.mark.xfail(reason=KNOWN_FAILING[name], strict=True)
        )
    return pytest.param(path, id=name)


@pytest.mark.parametrize("document", [_document_param(path) for path in DOCUMENTS])
def test_every_shell_command_in_the_docs_runs(document: Path, session: Session) -> None:
    """Each block in order, as a user would type them; every failure is listed at once."""
    missing_markers = []
    for block in bash_blocks(document):
        if block.mode not in ("full", "small", "parse-only"):
            session.errors.append(f"{block.where}: unknown docs-test marker {block.marker!r}")
            continue
        for command in commands(block):
            if block.mode == "full" and small(list(command.words)) != list(command.words):
                missing_markers.append(f"{command.where}: `{command.text}`")
            # An unmarked long block runs small too, so this test stays short.
            session.run(command, "small" if block.mode == "full" else block.mode)
    for where in missing_markers:
        session.errors.append(f"{where}: long; mark its block <!-- docs-test: small -->")
    assert not session.errors, "\n".join(session.errors)
    if document.name == "README.md":  # its first block, `make demo`, leaves these behind
        for output in ("astronaut_restored.png", "astronaut_before_after.png"):
            assert (session.root / "out" / output).is_file(), output


def test_the_weights_guide_runs_offline(session: Session) -> None:
    """docs/weights.md's "Try it without a download" block makes a restored image."""
    guide = ROOT / "docs" / "weights.md"
    section = guide.read_text().split("## Try it without a download", 1)[1]
    (block,) = [b for b in bash_blocks(guide) if b.text in section]
    steps = commands(block)
    assert len(steps) == 3
    for step in steps:
        session.run(step, "full")
    assert not session.errors, "\n".join(session.errors)
    assert (session.root / "out" / "lama-tiny.png").is_file()
    assert "method: lama" in "".join(session.stdout)


def test_the_demo_contact_sheet_shows_damaged_mask_restored_side_by_side() -> None:
    """sample_data/contact_sheet.py, as `make demo` runs it, on the bundled sample."""
    import importlib.util

    import numpy as np

    from inpaint_core import inpaint
    from inpaint_core.io import read_image, read_mask

    spec = importlib.util.spec_from_file_location(
        "contact_sheet", ROOT / "sample_data" / "contact_sheet.py"
    )
    assert spec is not None and spec.loader is not None
    sheet_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sheet_module)
    damaged = read_image(ROOT / "sample_data" / "astronaut_damaged.png")
    mask = read_mask(ROOT / "sample_data" / "astronaut_mask.png")
    restored = inpaint(damaged, mask, method="biharmonic")
    sheet = sheet_module.contact_sheet(damaged, mask, restored, gap=4)
    assert sheet.shape == (256, 3 * 256 + 2 * 4, 3) and sheet.dtype == np.uint8
    np.testing.assert_array_equal(sheet[:, :256], damaged)
    np.testing.assert_array_equal(sheet[:, 260:516, 0] == 255, mask != 0)
    np.testing.assert_array_equal(sheet[:, 520:], restored)
    assert (sheet[:, 256:260] == 255).all() and (sheet[:, 516:520] == 255).all()
    grey16 = (damaged[:, :, 0].astype(np.uint16) * 257)[:, :, None]
    np.testing.assert_array_equal(sheet_module.as_rgb8(grey16)[:, :, 2], damaged[:, :, 0])
    with pytest.raises(ValueError, match=r"restored is \(255, 256\)"):
        sheet_module.contact_sheet(damaged, mask, restored[:255], gap=4)
