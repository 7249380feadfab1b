"""After how many windows of one size ``backend=compile`` repays its compilation over ``eager``.

    python benchmarks/compile_break_even.py [--cases lama,edgeconnect] [--calls 4]
        [--repeats 2] [--threads 2] [--cold] [--windows 1,30,200]

Two measurements per case, each with the networks of the published architecture (random
weights, prepared as ``load_networks`` prepares them) and one tile (a photograph with a 20 %
free-form hole) through :func:`~inpaint_core.backends.run_predict`:

- the first call ``F`` of each backend in a fresh Python process, as a user's
  ``inpaint restore`` pays it (compilation included for ``compile``); processes of the two
  backends interleaved, ``--repeats`` times, the minimum kept;
- the per-window time ``t`` of each backend in one process, both warmed up, then ``--calls``
  calls of each interleaved (eager, compile, eager, ...), the minimum kept: the difference is
  a few per cent, which separate processes on a noisy machine would not resolve.

The break-even is ``n* = 1 + (F_compile - F_eager) / (t_eager - t_compile)`` windows: from
``n*`` windows of one size on, compiling finishes first. The table then gives the total for
``--windows`` counts of eager, compile and ``auto`` (what the method's
:attr:`~inpaint_core.learned.LearnedMethod.compile_after_pixels` makes ``backend=auto`` do at that
count), from the measured ``F`` and ``t``.

``--cold`` gives every compile process an empty Inductor cache (``TORCHINDUCTOR_CACHE_DIR``):
the first run on a machine. Without it the user's cache is used (warm from the second run on).

Cases: ``lama`` (big-lama's architecture on a 512² tile) and ``edgeconnect`` (``edge-gan``
with ``architecture="edgeconnect"`` on 256²), as in ``benchmarks/learned_flops.py``, and
``edge-gan-shipped`` (the shipped lite weights on 256²).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    "lama": ("lama", 512, {}),
    "edgeconnect": ("edge-gan", 256, {"architecture": "edgeconnect"}),
    "edge-gan-shipped": ("edge-gan", 256, None),  # the shipped lite weights
}
BACKENDS = ("eager", "compile")


def child(case: str, backend: str, calls: int, threads: int) -> None:
    """Print JSON seconds: ``{"first": F}`` of ``backend`` (``first-eager``,
    ``first-compile``), or ``{"eager": t, "compile": t}`` (``steady``)."""
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from learned_flops import build, tile

    from inpaint_core.backends import run_predict
    from inpaint_core.learned import prepare_for_inference

    torch.set_num_threads(threads)
    name, side, changes = CASES[case]
    method, networks = build(name, changes)
    networks = prepare_for_inference(networks, "cpu")
    image, hole = tile(side)

    def seconds(backend: str) -> float:
        instance = type(method)(**dict(method.params, backend=backend))
        started = time.perf_counter()
        run_predict(instance, networks, image, hole, "cpu")
        return time.perf_counter() - started

    if backend != "steady":
        print(json.dumps({"first": seconds(backend.removeprefix("first-"))}))
        return
    for each in BACKENDS:  # warm-up: the compilation
        seconds(each)
    times: dict[str, list[float]] = {each: [] for each in BACKENDS}
    for _ in range(calls):
        for each in BACKENDS:
            times[each].append(seconds(each))
    print(json.dumps({each: min(values) for each, values in times.items()}))


def measure(case: str, kind: str, calls: int, threads: int, cold: bool) -> dict[str, float]:
    """Run :func:`child` in a fresh interpreter; its JSON line."""
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as cache:
        if cold and kind == "first-compile":
            env["TORCHINDUCTOR_CACHE_DIR"] = cache
        argv = [sys.executable, __file__, "--child", case, "--backend", kind,
                "--calls", str(calls), "--threads", str(threads)]
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise SystemExit(f"{case} {kind} failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compile_after(case: str) -> int | None:
    """The windows of the case's size from which ``backend=auto`` compiles, from the method's
    :attr:`~inpaint_core.learned.LearnedMethod.compile_after_pixels` as shipped."""
    from inpaint_core import get_method

    name, side, _ = CASES[case]
    pixels = get_method(name).compile_after_pixels
    return None if pixels is None else -(-pixels // side**2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="lama,edgeconnect")
    parser.add_argument("--calls", type=int, default=6, help="interleaved steady calls")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cold", action="store_true", help="an empty Inductor cache")
    parser.add_argument("--windows", default="1,30,100,300")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.calls < 1:
        parser.error(f"--calls {args.calls}: needs at least 1")
    if args.child:
        child(args.child, args.backend, args.calls, args.threads)
        return
    cases = args.cases.split(",")
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}; valid: {', '.join(CASES)}")
    windows = [int(count) for count in args.windows.split(",")]
    print(f"| case | backend | first call s | per window s | "
          f"{' | '.join(f'{n} windows s' for n in windows)} |")
    print("|---|---|---|---|" + "---|" * len(windows))
    for case in cases:
        firsts: dict[str, list[float]] = {backend: [] for backend in BACKENDS}
        for _ in range(args.repeats):
            for backend in BACKENDS:  # interleaved
                run = measure(case, f"first-{backend}", 1, args.threads, args.cold)
                firsts[backend].append(run["first"])
        first = {backend: min(values) for backend, values in firsts.items()}
        each = measure(case, "steady", args.calls, args.threads, args.cold)

        def total(backend: str, count: int, first: dict = first, each: dict = each) -> float:
            return first[backend] + (count - 1) * each[backend]

        threshold = compile_after(case)
        for backend in (*BACKENDS, "auto"):
            cells = []
            for count in windows:
                chosen = backend
                if backend == "auto":
                    chosen = "compile" if threshold is not None and count >= threshold else "eager"
                cells.append(f"{total(chosen, count):.1f}")
            head = (f"{first[backend]:.2f} | {each[backend]:.3f}" if backend != "auto"
                    else f"compile from {threshold} windows | ")
            print(f"| {case} | {backend} | {head} | {' | '.join(cells)} |")
        saving = each["eager"] - each["compile"]
        verdict = (f"{1 + (first['compile'] - first['eager']) / saving:.0f} windows"
                   if saving > 0 else "never (compile is not faster per window)")
        print(f"<!-- {case}: break-even {verdict}; auto compiles from {threshold} -->",
              flush=True)


if __name__ == "__main__":
    main()
