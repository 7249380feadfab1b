"""The ``inpaint`` command.

    inpaint methods [--json] [NAME]
    inpaint run IMAGE MASK --method NAME [--param key=value ...] --output OUT [--overwrite]
    inpaint evaluate --data DIR [--methods all|a,b] [--masks survey|DIR|FILE] [--out DIR]
        [--weights METHOD=NAME|FILE ...]
    inpaint train METHOD --data PATH --steps N --out DIR [--resume CKPT] (see training/command.py)
    inpaint restore SCAN --mask MASK --method NAME --output OUT.zarr [--resume] (tiling/command.py)
    inpaint weights list|fetch|import|info (published checkpoints: weights/command.py)
    inpaint --version

User errors print ``inpaint: error: <message>`` and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from inpaint_core.errors import InpaintError, ParameterError
from inpaint_core.learned_params import BACKEND_PARAMETER
from inpaint_core.method import MethodInfo, Parameter

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _parse_param_texts(items: Sequence[str], flag: str = "--param") -> dict[str, str]:
    """Split ``key=value`` items of ``flag``; a missing ``=`` or a repeated key is an error."""
    texts: dict[str, str] = {}
    for item in items:
        key, separator, value = item.partition("=")
        key = key.strip()
        if not separator or not key:
            raise ParameterError(f"{flag} {item!r} must look like key=value, e.g. radius=5")
        if key in texts:
            raise ParameterError(f"{flag} {key!r} is given twice")
        texts[key] = value
    return texts


def put_flag_params(
    method: str, parameters: Sequence[Parameter], texts: dict[str, str],
    flags: Mapping[str, str | None],
) -> None:
    """Add the values of shortcut flags (``{"--weights": value, ...}``, None = not given) to
    the ``--param`` texts ``texts`` under the parameter the flag names (``--weights`` ->
    ``weights``).

    Raises:
        ParameterError: method ``method`` has no such parameter (among ``parameters``), or
            ``--param`` gives it too.
    """
    names = {parameter.name for parameter in parameters}
    for flag, value in flags.items():
        if value is None:
            continue
        key = flag.removeprefix("--")
        if key not in names:
            raise ParameterError(f"method {method!r} takes no {flag} (it has no {key!r})")
        if key in texts:
            raise ParameterError(f"{flag} and --param {key}=... are both given; give one")
        texts[key] = value


def _command_methods(args: argparse.Namespace) -> int:
    from inpaint_core.api import list_methods
    from inpaint_core.plugins import get_registry

    # Infos and plugin names only: a learned method's module (and torch) is never imported.
    registry = get_registry()
    infos = list_methods()
    if args.name:
        infos = [info for info in infos if info.name == args.name] or [registry.get(args.name).info]
    if args.json:
        rows = [dict(info.to_dict(), plugin=registry.plugin_of[info.name]) for info in infos]
        print(json.dumps(rows, indent=2))
        return 0
    if args.name:
        _print_method_details(infos[0], registry.plugin_of[infos[0].name])
        return 0
    headers = ("name", "family", "learned", "summary")
    rows = [(i.name, i.family.value, "yes" if i.learned else "no", i.summary) for i in infos]
    widths = [max(len(row[col]) for row in [headers, *rows]) for col in range(3)]
    for row in [headers, *rows]:
        cells = [row[col].ljust(widths[col]) for col in range(3)]
        print("  ".join([*cells, row[3]]))
    return 0


def _print_method_details(info: MethodInfo, plugin: str) -> None:
    print(f"{info.name}  ({info.family.value}, {'learned' if info.learned else 'not learned'})")
    print(f"  {info.summary}")
    print(f"  reference: {info.reference}")
    print(f"  plugin: {plugin}")
    print(
        f"  tiling: pad_multiple={info.pad_multiple} preferred_tile={info.preferred_tile} "
        f"context_margin={info.context_margin} supports_gpu={info.supports_gpu}"
    )
    print("  parameters:" if info.parameters else "  parameters: none")
    for parameter in info.parameters:
        bounds = ""
        if parameter.choices:
            bounds = f" one of {', '.join(parameter.choices)}"
        elif parameter.minimum is not None or parameter.maximum is not None:
            bounds = f" in [{parameter.minimum}, {parameter.maximum}]"
        print(
            f"    {parameter.name} ({parameter.type.value}, default {parameter.default!r}"
            f"{bounds}): {parameter.help}"
        )


def _command_run(args: argparse.Namespace) -> int:
    import numpy as np

    from inpaint_core.api import get_method, inpaint
    from inpaint_core.io import check_output_path, read_image, read_mask, write_image

    method_class = get_method(args.method)
    texts = _parse_param_texts(args.param)
    put_flag_params(args.method, method_class.info.parameters, texts,
                    {"--weights": args.weights, "--device": args.device,
                     "--backend": args.backend})
    params = method_class.info.parse_params(texts)
    method = method_class(**params)
    inputs = (args.image, args.mask)
    # Refuse a bad output before reading anything or spending minutes on the fill.
    check_output_path(args.output, inputs=inputs, overwrite=args.overwrite)
    image = read_image(args.image)
    mask = read_mask(args.mask)
    started = time.perf_counter()
    restored, extras = inpaint(image, mask, method, seed=args.seed, return_extras=True)
    elapsed = time.perf_counter() - started
    write_image(args.output, restored, inputs=inputs, overwrite=args.overwrite)
    output = Path(args.output)
    for name, extra in extras.items():  # e.g. edge-gan's edge map: OUT.edges.png
        extra_path = output.with_name(f"{output.stem}.{name}.png")
        picture = np.rint(np.clip(extra, 0.0, 1.0) * 255).astype(np.uint8)
        write_image(extra_path, picture, inputs=inputs, overwrite=args.overwrite)
        print(f"wrote {extra_path} ({name})")
    holes = int((mask != 0).sum())
    if holes == 0:
        print(f"nothing to restore: the mask {args.mask} has no hole; wrote {args.output} "
              "unchanged")
        return 0
    print(
        f"wrote {args.output} ({args.method}, {holes} hole pixels = "
        f"{100.0 * holes / mask.size:.1f}%, {elapsed:.2f} s)"
    )
    return 0


def _command_evaluate(args: argparse.Namespace) -> int:
    from inpaint_core.evaluation import evaluate, write_reports
    from inpaint_core.progress import ProgressBar

    methods = "all" if args.methods == "all" else [n.strip() for n in args.methods.split(",")]
    evaluation = evaluate(
        args.data, methods, args.masks, size=args.size, out=args.out, device=args.device,
        seed=args.seed, sheet_images=args.sheet_images, progress=ProgressBar("evaluate", "case"),
        weights=_parse_param_texts(args.weights, "--weights"),
    )
    written = write_reports(
        evaluation, args.out, report=args.report, title=args.title, command=args.command_line
    )
    failed = sum(not row.ok for row in evaluation.rows)
    print(f"{len(evaluation.rows)} results ({failed} failed) in {args.out}/results.csv")
    for path in written.values():
        print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``inpaint`` command."""
    from inpaint_core import DEFAULT_METHOD, __version__

    parser = argparse.ArgumentParser(
        prog="inpaint",
        description="Restore damaged images: classical and deep inpainting methods as plugins.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    methods = commands.add_parser("methods", help="list the registered methods")
    methods.add_argument("name", nargs="?", help="show one method's details and parameters")
    methods.add_argument("--json", action="store_true", help="print JSON instead of a table")
    methods.set_defaults(handler=_command_methods)

    run = commands.add_parser("run", help="inpaint one image file")
    run.add_argument("image", help="damaged image: PNG, TIFF (8/16 bit, float TIFF), JPEG, BMP")
    run.add_argument("mask", help="mask image of the same size; non-zero pixels are holes")
    run.add_argument("--method", "-m", default=DEFAULT_METHOD, help="a name from `methods`")
    run.add_argument(
        "--param",
        "-p",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a method parameter; repeat for several (see `inpaint methods NAME`)",
    )
    run.add_argument("--output", "-o", required=True, help="restored image: .png, .tif, .tiff")
    run.add_argument("--overwrite", action="store_true", help="replace an existing output")
    run.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    run.add_argument(
        "--weights",
        help="learned methods: an installed catalogue name (`inpaint weights list`) or a "
        ".safetensors file (`inpaint weights import`, `inpaint train`)",
    )
    run.add_argument("--device", help="learned methods: auto, cpu, cuda, cuda:N or mps")
    run.add_argument(
        "--backend", choices=BACKEND_PARAMETER.choices,
        help="learned methods: how the network runs (default: auto; see `inpaint methods NAME`)",
    )
    run.set_defaults(handler=_command_run)

    evaluate = commands.add_parser(
        "evaluate", help="measure methods with the survey protocol on a folder of images"
    )
    evaluate.add_argument("--data", required=True, help="folder of ground-truth images")
    evaluate.add_argument("--methods", default="all", help="'all' or names joined by commas")
    evaluate.add_argument(
        "--masks",
        default="survey",
        help="'survey' (centre 10-25%%, free-form 10-40%%), one mask file for every image, "
        "or a folder of masks named like the images",
    )
    evaluate.add_argument("--size", type=int, default=256, help="images are cropped to this")
    evaluate.add_argument(
        "--out", default="evaluation", help="results folder; a rerun resumes from its CSV"
    )
    evaluate.add_argument("--report", help="write the Markdown report here (default OUT/report.md)")
    evaluate.add_argument("--title", default="Inpainting evaluation", help="the report's title")
    evaluate.add_argument("--device", default="cpu", help="auto, cpu, cuda, cuda:N or mps")
    evaluate.add_argument("--seed", type=int, default=0, help="seeds masks and methods")
    evaluate.add_argument(
        "--weights",
        action="append",
        default=[],
        metavar="METHOD=NAME|FILE",
        help="a learned method's weights: an installed catalogue name or a .safetensors file; "
        "repeat for several methods",
    )
    evaluate.add_argument(
        "--sheet-images", type=int, default=3, help="images shown on the contact sheet"
    )
    evaluate.set_defaults(handler=_command_evaluate)

    from inpaint_core.training import command as train_command

    train_command.add_parser(commands, _parse_param_texts)
    from inpaint_core.tiling import command as restore_command

    restore_command.add_parser(commands, _parse_param_texts)
    from inpaint_core.weights import command as weights_command

    weights_command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 success, 2 user error, 130 interrupted)."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.command_line = "inpaint " + shlex.join(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.handler(args)
    except BrokenPipeError:  # the reader went away (`inpaint methods --json | head`)
        _quiet_stdout()
        return 0
    except InpaintError as error:
        print(f"inpaint: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:  # a full disk, a read-only filesystem, a vanished folder
        where = f" {error.filename!r}" if error.filename else ""
        print(f"inpaint: error: cannot write or read{where}: {error.strerror or error}",
              file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("inpaint: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit raises no second BrokenPipe."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
