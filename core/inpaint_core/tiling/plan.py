"""The tile plan: which windows of a scan a method sees, and which hole pixels each restores.

A :class:`Tile` is a window of the scan (what the method is given) and a *core* inside it
(the hole pixels it is responsible for). Every pixel of a core has at least ``margin`` pixels
of the window on each side, except on a side where the window touches the scan border. Every
hole pixel lies in at least one core; where cores overlap, the results are blended
(:mod:`inpaint_core.tiling.blend`).

Planning, for a scan ``(H, W)``, hole boxes, a tile side and a margin:

1. each box that no window can hold with its margin is split into a grid of pieces at most
   ``tile - 2 * margin`` on a side, neighbours overlapping by ``overlap`` (:func:`split_box`);
2. boxes that fit one window together are merged, greedily, row-major (:func:`merge_boxes`);
3. each merged box becomes the core of a window placed around it, centred where it can be and
   shifted inward at the scan border so that every window has full size (:func:`place_tile`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from inpaint_core.arrays import is_integer
from inpaint_core.errors import InvalidInputError, ParameterError
from inpaint_core.geometry import Box


@dataclass(frozen=True)
class Tile:
    """One window of the scan and the core of hole pixels it restores.

    Attributes:
        row0, row1, col0, col1: the window, half-open scan pixels: what the method sees.
        core: the :class:`Box` (scan pixels, inside the window) whose hole pixels this tile
            restores. Its pixels have ``margin`` window pixels on each side that is not the
            scan border.
    """

    row0: int
    row1: int
    col0: int
    col1: int
    core: Box

    def __post_init__(self) -> None:
        if self.core.intersection(self.window) != self.core:
            raise InvalidInputError(f"tile core {tuple(self.core)} is not inside {self.window}")

    @property
    def window(self) -> Box:
        return Box(self.row0, self.row1, self.col0, self.col1)

    @property
    def shape(self) -> tuple[int, int]:
        """The window's ``(rows, cols)``."""
        return self.row1 - self.row0, self.col1 - self.col0

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices selecting the window from the scan."""
        return slice(self.row0, self.row1), slice(self.col0, self.col1)

    @property
    def core_slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices selecting the core from the window's ``(rows, cols)`` array."""
        return self.core.slices_in(self.window)


def check_geometry(tile: int, margin: int, multiple: int = 1, overlap: int = 0) -> None:
    """Raise :class:`ParameterError` naming the value unless the tiling arguments agree.

    ``tile`` (window side, px) and ``multiple`` are positive ints, ``tile`` a multiple of
    ``multiple``; ``margin`` and ``overlap`` (px) are ints >= 0; ``tile > 2 * margin``; and
    ``overlap < tile - 2 * margin``.
    """
    for name, value, low in (
        ("tile", tile, 1),
        ("margin", margin, 0),
        ("multiple", multiple, 1),
        ("overlap", overlap, 0),
    ):
        if not is_integer(value) or value < low:
            raise ParameterError(f"{name}={value!r} must be an int >= {low}")
    if tile <= 2 * margin:
        raise ParameterError(
            f"tile={tile} must be larger than 2*margin={2 * margin} (the method's context margin "
            f"is {margin} px on each side); use --tile {2 * margin + multiple} or larger"
        )
    if tile % multiple:
        lower = tile - tile % multiple
        raise ParameterError(
            f"tile={tile} must be a multiple of {multiple} (the method's pad_multiple); "
            f"use {lower if lower > 2 * margin else lower + multiple}"
        )
    if overlap >= tile - 2 * margin:
        raise ParameterError(
            f"overlap={overlap} must be smaller than tile - 2*margin={tile - 2 * margin}"
        )


def check_box(box: Sequence[int], shape: tuple[int, int]) -> Box:
    """Return ``box`` as a :class:`Box`, or raise :class:`InvalidInputError` naming it."""
    if len(box) != 4 or not all(is_integer(v) for v in box):
        raise InvalidInputError(f"box {box!r} must be four ints (row0, row1, col0, col1)")
    checked = Box(*(int(v) for v in box))
    if not (
        0 <= checked.row0 < checked.row1 <= shape[0]
        and 0 <= checked.col0 < checked.col1 <= shape[1]
    ):
        raise InvalidInputError(
            f"box {tuple(checked)} is empty or not inside the scan of shape {shape}"
        )
    return checked


def window_start(start: int, stop: int, length: int, size: int, margin: int) -> int | None:
    """Along one axis: the start of a ``size`` window holding ``[start, stop)`` with margins.

    The window lies in ``[0, length)``; the span keeps ``margin`` pixels of the window on each
    side, except where the window touches 0 or ``length``. Of the starts that work, the one
    nearest to centring the span is returned (the smaller on a tie); None if none works.
    ``size`` is at most ``length``.
    """
    last = length - size
    if last == 0:
        return 0
    ranges = []
    if stop <= size - margin:
        ranges.append((0, 0))
    low, high = max(stop + margin - size, 1), min(start - margin, last - 1)
    if low <= high:
        ranges.append((low, high))
    if start >= last + margin:
        ranges.append((last, last))
    if not ranges:
        return None
    centre = (start + stop - size) // 2
    starts = [min(max(centre, low), high) for low, high in ranges]
    return min(starts, key=lambda s: (abs(s - centre), s))


def _window_size(shape: tuple[int, int], tile: int) -> tuple[int, int]:
    return min(tile, shape[0]), min(tile, shape[1])


def fits(box: Box, shape: tuple[int, int], tile: int, margin: int) -> bool:
    """True if one ``tile`` window (smaller only where the scan is) holds ``box`` as its core."""
    rows, cols = _window_size(shape, tile)
    return (
        window_start(box.row0, box.row1, shape[0], rows, margin) is not None
        and window_start(box.col0, box.col1, shape[1], cols, margin) is not None
    )


def split_span(start: int, stop: int, piece: int, overlap: int) -> list[tuple[int, int]]:
    """Split ``[start, stop)`` into the fewest pieces at most ``piece`` long, evenly spaced,
    each overlapping the next by at least ``overlap`` (``0 <= overlap < piece``)."""
    span = stop - start
    if span <= piece:
        return [(start, stop)]
    count = -(-(span - overlap) // (piece - overlap))
    length = -(-(span + (count - 1) * overlap) // count)
    starts = [start + k * (span - length) // (count - 1) for k in range(count)]
    return [(s, s + length) for s in starts]


def split_box(
    box: Box, shape: tuple[int, int], tile: int, margin: int, overlap: int = 0
) -> list[Box]:
    """``[box]`` if a window holds it (:func:`fits`); else a row-major grid of overlapping
    pieces at most ``tile - 2 * margin`` on a side, split only along the axes that need it."""
    if fits(box, shape, tile, margin):
        return [box]
    rows, cols = _window_size(shape, tile)
    pieces = []
    for start, stop, length, size in (
        (box.row0, box.row1, shape[0], rows),
        (box.col0, box.col1, shape[1], cols),
    ):
        if window_start(start, stop, length, size, margin) is not None:
            pieces.append([(start, stop)])
        else:
            pieces.append(split_span(start, stop, tile - 2 * margin, overlap))
    return [Box(r0, r1, c0, c1) for r0, r1 in pieces[0] for c0, c1 in pieces[1]]


def merge_boxes(boxes: Iterable[Box], shape: tuple[int, int], tile: int, margin: int) -> list[Box]:
    """Group boxes into as few windows as a greedy pass finds; return each group's union box.

    Boxes are taken row-major; each joins the nearby group whose union with it grows least
    and still :func:`fits` (the oldest on a tie), else starts a group. A box that does not fit
    alone stays alone. Deterministic for the same input.
    """
    rows, cols = _window_size(shape, tile)
    groups: list[Box] = []
    cells: dict[tuple[int, int], list[int]] = {}  # grid of window-sized cells -> group ids

    def cells_of(box: Box, reach: int) -> Iterable[tuple[int, int]]:
        for row in range((box.row0 - reach) // rows, (box.row1 - 1 + reach) // rows + 1):
            for col in range((box.col0 - reach) // cols, (box.col1 - 1 + reach) // cols + 1):
                yield row, col

    for box in sorted(boxes, key=lambda b: (b.row0, b.col0, b.row1, b.col1)):
        # A group that can take the box lies within one window of it.
        near = sorted({g for cell in cells_of(box, max(rows, cols)) for g in cells.get(cell, ())})
        best, best_area = None, 0
        for group in near:
            union = groups[group].union(box)
            area = union.height * union.width
            if (best is None or area < best_area) and fits(union, shape, tile, margin):
                best, best_area = group, area
        if best is None:
            best = len(groups)
            groups.append(box)
        else:
            groups[best] = groups[best].union(box)
        for cell in cells_of(groups[best], 0):
            members = cells.setdefault(cell, [])
            if best not in members:
                members.append(best)
    return groups


def place_tile(core: Box, shape: tuple[int, int], tile: int, margin: int) -> Tile:
    """The :class:`Tile` of side ``tile`` (the scan's side where smaller) whose core is
    ``core``, centred on it where possible, edge-aligned inside the scan at its border.

    Raises:
        InvalidInputError: if no window holds ``core`` with its margin (split it first).
    """
    rows, cols = _window_size(shape, tile)
    row = window_start(core.row0, core.row1, shape[0], rows, margin)
    col = window_start(core.col0, core.col1, shape[1], cols, margin)
    if row is None or col is None:
        raise InvalidInputError(
            f"box {tuple(core)} does not fit a {rows}x{cols} tile with margin {margin}; "
            "split it with split_box first"
        )
    return Tile(row, row + rows, col, col + cols, core)


def plan_tiles(
    shape: tuple[int, int],
    boxes: Iterable[Sequence[int]],
    tile: int,
    margin: int,
    multiple: int = 1,
    *,
    overlap: int = 0,
    refine: Callable[[Box], Box | None] | None = None,
) -> list[Tile]:
    """Plan the tiles that restore every hole pixel of a scan with enough context.

    Args:
        shape: the scan's ``(H, W)``, positive ints.
        boxes: hole boxes ``(row0, row1, col0, col1)``, half-open, inside the scan; usually
            :attr:`HoleRegions.boxes` (one per connected component). Every hole pixel must be
            in one of them.
        tile: window side in px (the method's ``preferred_tile``), a multiple of ``multiple``;
            windows are ``tile x tile`` except along an axis of the scan shorter than ``tile``,
            where they span the whole axis.
        margin: context in px each core pixel keeps inside its window (``context_margin``).
        multiple: the method's ``pad_multiple``; ``tile`` must be a multiple of it.
        overlap: px by which the pieces of a split box overlap, for blending; keep it below
            ``tile - 2 * margin``.
        refine: given a piece of a split box, return the exact box of its hole pixels or None
            if it has none (e.g. ``functools.partial(shrink_to_holes, mask)``). Without it,
            every piece of a split box is taken to hold holes.

    Returns:
        The tiles in row-major order of their windows, no two with the same window. Every
        hole pixel is in some tile's core; no tile is planned for a box-free area.

    Raises:
        ParameterError: for a bad ``tile``, ``margin``, ``multiple`` or ``overlap``.
        InvalidInputError: for a bad ``shape`` or box, naming it.
    """
    if len(shape) != 2 or not all(is_integer(v) and v > 0 for v in shape):
        raise InvalidInputError(f"shape={tuple(shape)!r} must be two positive ints (H, W)")
    shape = (int(shape[0]), int(shape[1]))
    check_geometry(tile, margin, multiple, overlap)
    units: list[Box] = []
    for given in boxes:
        box = check_box(given, shape)
        pieces = split_box(box, shape, tile, margin, overlap)
        if len(pieces) > 1 and refine is not None:
            pieces = [_refined(refine, piece) for piece in pieces]
        units.extend(piece for piece in pieces if piece is not None)
    # Groups placed on the same window share one tile: both cores lie in the part of the
    # window that keeps the margin, so their union does too.
    cores: dict[Box, Box] = {}
    for core in merge_boxes(units, shape, tile, margin):
        window = place_tile(core, shape, tile, margin).window
        cores[window] = cores[window].union(core) if window in cores else core
    return [Tile(*window, cores[window]) for window in sorted(cores)]


def _refined(refine: Callable[[Box], Box | None], piece: Box) -> Box | None:
    inner = refine(piece)
    if inner is None:
        return None
    inner = Box(*inner)
    if inner.intersection(piece) != inner:
        raise InvalidInputError(f"refine returned {tuple(inner)}, not inside {tuple(piece)}")
    return inner


def tiles_by_block(
    tiles: Sequence[Tile], block: tuple[int, int]
) -> dict[tuple[int, int], list[int]]:
    """Map each ``block``-sized output chunk ``(i, j)`` (chunk rows, cols) to the indices of
    the tiles whose core touches it, in plan order. Chunks no core touches are absent: the
    engine copies them from the source without computing anything."""
    touched: dict[tuple[int, int], list[int]] = {}
    for index, tile in enumerate(tiles):
        core = tile.core
        for i in range(core.row0 // block[0], (core.row1 - 1) // block[0] + 1):
            for j in range(core.col0 // block[1], (core.col1 - 1) // block[1] + 1):
                touched.setdefault((i, j), []).append(index)
    return dict(sorted(touched.items()))
