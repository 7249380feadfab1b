"""``inpaint weights``: list, fetch, import and describe published checkpoints.

inpaint weights list [--json]
inpaint weights fetch NAME [--force]
inpaint weights import FORMAT PATH --output FILE.safetensors [--overwrite]
inpaint weights info FILE|NAME [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from inpaint_core.weights import formats

__all__ = ["add_parser"]


def add_parser(commands: Any) -> None:
    """Add the ``weights`` command group to ``commands`` (an argparse subparsers object)."""
    group = commands.add_parser("weights", help="published checkpoints: list, fetch, import, info")
    verbs = group.add_subparsers(dest="weights_command", required=True, metavar="VERB")

    listing = verbs.add_parser("list", help="the catalogue of known published checkpoints")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(handler=_list)

    fetch = verbs.add_parser("fetch", help="download, check, convert and install catalogue weights")
    fetch.add_argument("name", help="a name from `inpaint weights list`")
    fetch.add_argument("--force", action="store_true", help="fetch again even when installed")
    fetch.set_defaults(handler=_fetch)

    convert = verbs.add_parser("import", help="convert a published checkpoint you already have")
    convert.add_argument(
        "format", help=f"the checkpoint's format: {', '.join(formats.format_names())}"
    )
    convert.add_argument("path", help="the checkpoint file or folder, as published")
    convert.add_argument("--output", "-o", required=True, help="the FILE.safetensors to write")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing output")
    convert.set_defaults(handler=_import)

    info = verbs.add_parser("info", help="what a weights file is: method, config, source")
    info.add_argument("file", help="a .safetensors file or an installed catalogue name")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(handler=_info)


def _list(args: argparse.Namespace) -> int:
    from inpaint_core.weights import catalogue
    from inpaint_core.weights.published import UNPUBLISHED

    rows = [entry.to_dict() for entry in catalogue()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    headers = ("name", "method", "installed", "size", "licence")
    table = [
        (
            r["name"],
            r["method"],
            "yes" if r["installed"] else "no",
            f"{r['size_mb']:.0f} MB",
            r["licence"],
        )
        for r in rows
    ]
    widths = [max(len(row[col]) for row in [headers, *table]) for col in range(4)]
    for row in [headers, *table]:
        print("  ".join([*(row[col].ljust(widths[col]) for col in range(4)), row[4]]))
    for method, why in UNPUBLISHED.items():
        print(f"\n{method}: {why}.")
    print("\n`inpaint weights info NAME` or `list --json` for URLs, digests, data and scores.")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from inpaint_core.progress import ProgressBar
    from inpaint_core.weights import fetch, get_entry, installed_path

    entry = get_entry(args.name)
    if installed_path(entry.name).is_file() and not args.force:
        path = installed_path(entry.name)
        print(f"{entry.name} is already installed: {path} (--force to fetch it again)")
        return 0
    print(f"{entry.name}: {entry.description}")
    print(f"  licence: {entry.licence}")
    print(f"  training data: {entry.training_data}")
    print(f"  from: {entry.url} (about {entry.size_mb:.0f} MB)")
    if entry.digest is None:
        print("  no digest is pinned by the publisher: the sha256 of the download is recorded")
    bar = ProgressBar(f"fetch {entry.name}", "MB")

    def progress(done: int, total: int) -> None:
        bar(done // 1_000_000, max(total, done) // 1_000_000 or 1)

    result = fetch(entry.name, progress=progress, force=args.force)
    print(f"installed {result.path} (download sha256 {result.sha256})")
    print(f"use it: inpaint run IMAGE MASK -m {entry.method} --weights {entry.name} -o OUT.png")
    return 0


def _import(args: argparse.Namespace) -> int:
    from inpaint_core.weights import import_weights

    output = import_weights(args.format, args.path, args.output, overwrite=args.overwrite)
    print(f"wrote {output} and its sidecar {output.with_suffix('.json')}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from inpaint_core.weights import weights_info

    info = weights_info(args.file)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    for key in ("path", "method", "licence", "sha256", "step", "created"):
        print(f"{key}: {info[key]}")
    source = info["source"]
    if isinstance(source, dict):
        print("source:")
        for key, value in source.items():
            print(f"  {key}: {value}")
    else:
        print(f"source: {source}")
    print("config: " + json.dumps(info["config"], sort_keys=True))
    sys.stdout.flush()
    return 0
