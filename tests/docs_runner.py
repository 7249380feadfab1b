"""How the docs tests run the docs' commands: bash blocks, their commands, a sandbox.

Every fenced ``bash`` block of README.md, docs/*.md and docs/methods/*.md is run, top to
bottom, in a fresh copy of the checkout's sample files (``out/`` and every other output land
there, never in the checkout), as a new user would type it. The README starts where `make
demo` leaves a user: its recipe is read from the Makefile and run first. How each command
runs:

- ``inpaint ...``: in-process through :func:`inpaint_core.cli.main`; exit status 0 expected.
- ``python ...``: a subprocess of this interpreter; exit status 0 expected.
- ``pip install ./LOCAL/FOLDER``: installed with ``--no-deps --no-build-isolation
  --no-index`` into a temporary folder put on ``sys.path`` (never into the project's venv).
- ``inpaint weights fetch NAME``: needs the network. Run with every proxy pointing at a
  closed port, so it always fails the documented offline way: exit 2 naming the download URL
  and the ``inpaint weights import`` command. A later ``--weights NAME`` is then expected to
  fail naming ``inpaint weights fetch NAME``.
- ``python sample_data/make_corpus.py``: needs Debian wallpaper packages (installed as root).
  Where they are absent it must refuse saying so; three bundled images then stand in for the
  corpus, so the training commands after it still run.
- ``. .venv/bin/activate``: nothing to do, the test already runs in the environment.
- ``make demo``: its Makefile recipe, command by command, on small inputs. ``make test``
  is not run: it is what CI runs (``.ci/run``), and it would run this test again.
- anything else: a subprocess; exit status 0 expected.

A marker comment on the line before a block changes how it runs:

- ``<!-- docs-test: small -->``: the block's commands run on small inputs (``SMALL_RULES``:
  fewer training steps, a smaller scan...). A block whose commands those rules would change
  must carry the marker, so a reader knows the test did not run it at full size.
- ``<!-- docs-test: parse-only REASON -->``: the block needs what no test machine has (a dask
  cluster, CUDA GPUs): its ``inpaint`` commands are parsed by the CLI's parser and its Python
  is compiled, nothing is run.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from inpaint_core.cli import build_parser, main
from inpaint_core.plugins import reset_registry

ROOT = Path(__file__).resolve().parents[1]


#: What a sandbox holds: the files the documented commands read (copied, so writes stay there).
SANDBOX_FOLDERS = ("sample_data", "examples", "benchmarks", "tests/fixtures")
#: An address nothing listens on: any download fails at once, whatever network the host has.
CLOSED_PROXY = "http://127.0.0.1:9"
#: Where make_corpus.py reads its images (the Debian packages named in its docstring).
CORPUS_SOURCES = ("/usr/share/backgrounds", "/usr/share/wallpapers")
SUBPROCESS_TIMEOUT_S = 300
FENCE = re.compile(r"^( *)```bash\n(.*?)\n\1```", flags=re.S | re.M)
MARKER = re.compile(r"<!--\s*docs-test:\s*(.*?)\s*-->\s*$")
SHELL_OPERATORS = {"|", "||", "&&", ";", ">", ">>", "<", "2>", "2>&1"}


@dataclass(frozen=True)
class Command:
    """One command line of a block: its words, ``VAR=value`` prefixes and here-document."""

    words: tuple[str, ...]
    env: dict[str, str]
    where: str
    stdin: str | None = None

    @property
    def text(self) -> str:
        return shlex.join(self.words)


@dataclass(frozen=True)
class Block:
    """A fenced ``bash`` block: where it starts, its marker (``None`` if unmarked), its text."""

    path: Path
    line: int
    marker: str | None
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def mode(self) -> str:
        return (self.marker or "full").split()[0]


def bash_blocks(path: Path) -> list[Block]:
    """Every fenced bash block of ``path``, with the marker on the line before it, if any."""
    text = path.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = MARKER.search(before)
        line = text.count("\n", 0, match.start()) + 1
        body = "\n".join(row[len(match.group(1)) :] for row in match.group(2).split("\n"))
        blocks.append(Block(path, line, marker.group(1) if marker else None, body))
    return blocks


def commands(block: Block) -> list[Command]:
    """Split a block into commands: continuation lines joined, comments and blanks dropped.

    Raises:
        ValueError: shell syntax the docs keep out of their commands (pipes, redirections,
            ``&&``), naming the line.
    """
    rows = block.text.split("\n")
    found: list[Command] = []
    index = 0
    while index < len(rows):
        start = index
        line = rows[index]
        while line.endswith("\\") and index + 1 < len(rows):
            index += 1
            line = line[:-1] + " " + rows[index].strip()
        index += 1
        stdin = None
        heredoc = re.search(r"<<\s*'?(\w+)'?", line)
        if heredoc:
            end = rows.index(heredoc.group(1), index)
            stdin = "\n".join(rows[index:end]) + "\n"
            line = line[: heredoc.start()]
            index = end + 1
        words = shlex.split(line, comments=True)
        if not words:
            continue
        where = f"{block.where}+{start + 1}"
        bad = SHELL_OPERATORS.intersection(words)
        if bad:
            raise ValueError(f"{where}: shell operator {sorted(bad)} in `{line.strip()}`")
        env = {}
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
            name, _, value = words.pop(0).partition("=")
            env[name] = value
        found.append(Command(tuple(words), env, where, stdin))
    return found


def _option_rule(option: str, new: Callable[[str], str]) -> Callable[[list[str]], list[str]]:
    def rule(words: list[str]) -> list[str]:
        out = list(words)
        for i, word in enumerate(out[:-1]):
            if word == option:
                out[i + 1] = new(out[i + 1])
        return out

    return rule


def _first_value_only(option: str) -> Callable[[list[str]], list[str]]:
    def rule(words: list[str]) -> list[str]:
        if option not in words:
            return words
        i = words.index(option) + 1
        end = i + 1
        while end < len(words) and not words[end].startswith("-"):
            end += 1
        return words[: i + 1] + words[end:]

    return rule


def _survey_at(size: int) -> Callable[[list[str]], list[str]]:
    """``inpaint evaluate`` on generated masks at ``size`` px (a user's mask keeps its size)."""

    def rule(words: list[str]) -> list[str]:
        masks = words[words.index("--masks") + 1] if "--masks" in words else "survey"
        if masks != "survey" or "--size" in words:
            return _option_rule("--size", lambda _: str(size))(words)
        return [*words, "--size", str(size)]

    return rule


def _train_crop(size: int) -> Callable[[list[str]], list[str]]:
    """``inpaint train`` on ``size`` px crops, unless the network's input size is fixed (an
    ``image_size`` option) or its depth asks for more (pix2pix's ``depth=D`` needs multiples of
    ``2**D``)."""

    def rule(words: list[str]) -> list[str]:
        if any(word.startswith("image_size=") for word in words):
            return words
        depths = [int(word.split("=", 1)[1]) for word in words if word.startswith("depth=")]
        if depths and 2 ** max(depths) > size:
            return _option_rule("--size", lambda _: str(2 ** max(depths)))(words)
        return _option_rule("--size", lambda _: str(size))(words)

    return rule


#: The small inputs of a ``<!-- docs-test: small -->`` block, by the command they apply to.
SMALL_RULES: dict[str, list[Callable[[list[str]], list[str]]]] = {
    "inpaint train": [
        # 1 or 2 steps: 2 from 32 documented steps up, so a resume of a short run asks for more.
        _option_rule("--steps", lambda steps: "1" if int(steps) < 32 else "2"),
        _option_rule("--batch", lambda _: "2"),
        _train_crop(64),
        _option_rule("--time-limit", lambda _: "30"),
        _option_rule("--checkpoint-every", lambda _: "1"),
        _option_rule("--log-every", lambda _: "1"),
    ],
    "inpaint evaluate": [_survey_at(64)],
    "python sample_data/make_scan.py": [
        _option_rule("--size", lambda _: "512"),
        _option_rule("--chunk", lambda _: "256"),
    ],
    "python benchmarks/attention_memory.py": [_first_value_only("--sizes")],
}


def small(words: list[str]) -> list[str]:
    """``words`` with the small-input rules of its command applied (unchanged if none)."""
    for prefix, rules in SMALL_RULES.items():
        if words[: len(prefix.split())] == prefix.split():
            for rule in rules:
                words = rule(words)
    return words


def demo_recipe() -> list[Command]:
    """The commands of the Makefile's ``demo`` target, its variables expanded."""
    makefile = (ROOT / "Makefile").read_text()
    variables = dict(re.findall(r"^(\w+)\s*[:?]?=\s*(.*?)\s*$", makefile, flags=re.M))
    variables["BIN"] = "BIN"
    recipe = makefile.split("\ndemo:", 1)[1].split("\n", 1)[1]
    lines = []
    for row in recipe.split("\n"):
        if not row.startswith("\t"):
            break
        lines.append(row.strip())
    text = "\n".join(lines)
    for _ in range(3):  # variables that name variables
        text = re.sub(r"\$\((\w+)\)", lambda m: variables[m.group(1)], text)
    # `$(BIN)/inpaint` is the `inpaint` this test runs in-process, `$(BIN)/python` its own.
    text = text.replace("BIN/inpaint", "inpaint").replace("BIN/python", "python")
    return commands(Block(ROOT / "Makefile", 1, "small", text))


@dataclass
class Session:
    """A user's shell: a sandbox folder, the plugins they pip-installed, failed downloads."""

    root: Path
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch
    offline_weights: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    stdout: list[str] = field(default_factory=list)

    @contextmanager
    def env(self, extra: dict[str, str]) -> Iterator[None]:
        saved = {name: os.environ.get(name) for name in extra}
        os.environ.update(extra)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def fail(self, command: Command, why: str) -> None:
        self.errors.append(f"{command.where}: `{command.text}`: {why}")

    def expand(self, words: list[str]) -> list[str]:
        home = os.environ["HOME"]
        return [home + word[1:] if word.startswith("~/") else word for word in words]

    def run(self, command: Command, mode: str) -> None:
        words = self.expand(list(command.words))
        if mode == "small":
            words = small(words)
        if mode == "parse-only":
            self.parse_only(command, words)
        elif words[0] in (".", "source") and words[1:] == [".venv/bin/activate"]:
            return
        elif words[:2] == ["make", "demo"]:
            for step in demo_recipe():
                self.run(step, "small")
        elif words[:2] == ["make", "test"]:
            return  # what CI runs; it would run this test again
        elif words[0] == "inpaint":
            self.inpaint(command, words[1:])
        elif words[:2] == ["pip", "install"]:
            self.pip_install(command, words[2:])
        elif words[:2] == ["python", "sample_data/make_corpus.py"] and not any(
            Path(folder).is_dir() for folder in CORPUS_SOURCES
        ):
            self.corpus_stand_in(command, words)
        else:
            if words[0] == "python":
                words[0] = sys.executable
            self.subprocess(command, words)

    def parse_only(self, command: Command, words: list[str]) -> None:
        if words[0] == "inpaint":
            try:
                build_parser().parse_args(words[1:])
            except SystemExit as exit_:
                self.fail(command, f"the CLI does not parse it (exit {exit_.code})")
        elif command.stdin is not None and words[:2] == ["python", "-"]:
            try:
                compile(command.stdin, command.where, "exec")
            except SyntaxError as error:
                self.fail(command, f"its Python does not compile: {error}")

    def inpaint(self, command: Command, argv: list[str]) -> None:
        self.capsys.readouterr()
        with self.env(command.env):
            try:
                status = main(argv)
            except SystemExit as exit_:  # argparse's own errors
                status = exit_.code if isinstance(exit_.code, int) else 2
        out, err = self.capsys.readouterr()
        self.stdout.append(out)
        if argv[:2] == ["weights", "fetch"]:
            self.expect_offline_fetch(command, argv[2], status, err)
            return
        wanted = [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == "--weights"]
        missing = self.offline_weights.intersection(wanted)
        if missing:
            name = missing.pop()
            if status != 2 or f"inpaint weights fetch {name}" not in err:
                self.fail(command, f"without {name} it should exit 2 naming the fetch: {err}")
        elif status != 0:
            self.fail(command, f"exit {status}: {err.strip()[-600:]}")

    def expect_offline_fetch(self, command: Command, name: str, status: int, err: str) -> None:
        from inpaint_core.weights import get_entry

        url = get_entry(name).url
        if status != 2 or url not in err or "inpaint weights import" not in err:
            self.fail(command, f"offline, expected exit 2 naming {url} and the import: {err}")
        self.offline_weights.add(name)

    def pip_install(self, command: Command, arguments: list[str]) -> None:
        local = [word for word in arguments if not word.startswith("-")]
        if not all((self.root / word).is_dir() for word in local):
            self.fail(command, "installs from the network: mark the block parse-only")
            return
        site = self.root / "pip-site"
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
        pip += ["--no-build-isolation", "--no-index", "--disable-pip-version-check"]
        self.subprocess(command, [*pip, "--target", str(site), *arguments])
        self.monkeypatch.syspath_prepend(str(site))
        self.monkeypatch.setenv("PYTHONPATH", str(site))
        importlib.invalidate_caches()
        reset_registry()

    def corpus_stand_in(self, command: Command, words: list[str]) -> None:
        done = self.subprocess(command, [sys.executable, *words[1:]], check=False)
        if done.returncode == 0 or "install the Debian packages" not in done.stderr:
            self.fail(command, f"without the packages it should refuse so: {done.stderr}")
        corpus = self.root / "sample_data" / "corpus"
        corpus.mkdir(exist_ok=True)
        for image in (self.root / "sample_data" / "eval").glob("*.png"):
            shutil.copy(image, corpus / image.name)

    def subprocess(
        self, command: Command, words: list[str], *, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        executable = shutil.which(words[0]) or words[0]
        done = subprocess.run(
            [executable, *words[1:]],
            cwd=self.root,
            env={**os.environ, **command.env},
            input=command.stdin,
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT_S,
        )
        if check and done.returncode != 0:
            self.fail(command, f"exit {done.returncode}: {done.stderr.strip()[-600:]}")
        return done
