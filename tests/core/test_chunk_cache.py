"""ChunkCache: slices served from decoded chunks equal the array's own, within a byte budget."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import zarr

from inpaint_core.errors import InvalidInputError, ParameterError
from inpaint_core.io.cache import ChunkCache, chunked


@pytest.fixture
def stored(tmp_path: Path) -> zarr.Array:
    data = np.random.default_rng(0).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    array = zarr.create_array(str(tmp_path / "s.zarr"), shape=data.shape, chunks=(16, 32, 3),
                              dtype="uint8")
    array[:] = data
    return array


def test_slices_equal_the_array_and_each_chunk_is_decoded_once(stored: zarr.Array) -> None:
    cache = ChunkCache(stored)
    data = stored[...]
    rng = np.random.default_rng(1)
    for _ in range(40):
        r0, c0 = int(rng.integers(0, 70)), int(rng.integers(0, 90))
        r1, c1 = int(rng.integers(r0, 71)), int(rng.integers(c0, 91))
        got = cache[r0:r1, c0:c1]
        assert got.dtype == np.uint8 and np.array_equal(got, data[r0:r1, c0:c1])
    assert np.array_equal(cache[:, :], data) and np.array_equal(cache[60:200, 80:], data[60:, 80:])
    assert cache.misses == 5 * 3  # every chunk decoded once, then served from memory
    assert cache.hits > cache.misses
    assert cache[5:5, 0:10].shape == (0, 10, 3)


def test_a_reader_decodes_the_chunks_in_the_reading_thread(stored: zarr.Array) -> None:
    from inpaint_core.io.chunks import direct_chunks

    direct = direct_chunks(stored)
    assert direct is not None
    threads: set[int] = set()

    def read(block: tuple[int, int]) -> np.ndarray:
        threads.add(threading.get_native_id())
        return direct.read(block)

    cache = ChunkCache(stored, reader=read)
    assert np.array_equal(cache[3:60, 10:85], stored[3:60, 10:85])
    assert cache.misses == 4 * 3 and threads == {threading.get_native_id()}


def test_the_budget_drops_the_least_recently_used(stored: zarr.Array) -> None:
    one_chunk = 16 * 32 * 3
    cache = ChunkCache(stored, max_bytes=2 * one_chunk)
    cache[0:16, 0:32], cache[0:16, 32:64], cache[0:16, 0:32]  # (0, 1) is now the oldest
    cache[16:32, 0:32]  # evicts (0, 1)
    misses = cache.misses
    cache[0:16, 0:32]
    assert cache.misses == misses
    cache[0:16, 32:64]
    assert cache.misses == misses + 1
    nothing = ChunkCache(stored, max_bytes=0)
    nothing[0:4, 0:4], nothing[0:4, 0:4]
    assert nothing.misses == 2 and nothing.hits == 0


def test_threads_read_the_same_values(stored: zarr.Array) -> None:
    cache, data = ChunkCache(stored), stored[...]
    failures: list[tuple[int, int]] = []

    def read(offset: int) -> None:
        for row in range(0, 60, 7):
            if not np.array_equal(cache[row : row + 10, offset : offset + 40],
                                  data[row : row + 10, offset : offset + 40]):
                failures.append((row, offset))

    threads = [threading.Thread(target=read, args=(o,)) for o in (0, 20, 40, 50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures


def test_refuses_what_it_cannot_cache(stored: zarr.Array, tmp_path: Path) -> None:
    assert chunked(stored) == (16, 32) and chunked(np.zeros((4, 4))) is None
    split = zarr.create_array(str(tmp_path / "c.zarr"), shape=(8, 8, 3), chunks=(4, 4, 1),
                              dtype="uint8")
    assert chunked(split) is None  # channels in separate chunks
    with pytest.raises(InvalidInputError, match=r"ndarray with chunks None cannot be cached"):
        ChunkCache(np.zeros((4, 4)))
    with pytest.raises(ParameterError, match=r"max_bytes=-1 must be an int >= 0"):
        ChunkCache(stored, max_bytes=-1)
    with pytest.raises(InvalidInputError, match=r"step-1 slices, not slice\(0, 8, 2\)"):
        ChunkCache(stored)[0:8:2, 0:8]
