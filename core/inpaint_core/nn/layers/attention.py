"""Contextual attention (Yu et al., "Generative Image Inpainting with Contextual Attention", 2018).

Every feature position in the hole looks for the known patches of the same feature map that
resemble its neighbourhood, and is rebuilt from them:

1. The features are downscaled by ``rate`` (average pooling; DeepFill uses 2). Each position
   of the small map has a 3x3 patch; a patch is a **key** only if all its pixels are known
   (the hole, max-pooled to the small map, does not touch it), so no hole content is copied.
2. **Scores**: the cosine similarity of each query patch with every key patch (both
   L2-normalised, ``eps = 1e-4``). With ``fuse`` (attention propagation), the score of
   ``(q, k)`` is the sum of the scores of ``(q + d, k + d)`` over the 3x3 offsets ``d``, so
   neighbouring positions agree on coherent shifts.
3. ``softmax(scale * scores)`` over the keys (scale 10 in the paper).
4. **Reconstruction**: the weighted sum of the keys' raw patches at full resolution
   (``2 * rate`` square, stride ``rate``; 3x3 at ``rate=1``) is folded back, i.e. a transposed
   convolution of the attention map with the raw patches as kernels, averaged over the
   patches that overlap each pixel.
5. The output equals the reconstruction at hole positions and the input elsewhere.

**Bounded memory.** The official code builds the full score volume over all pairs of small
positions, ``(HW / rate^2)^2`` elements, and two fused copies of it: 1 GiB each for the 256 x 256
features of a 1024 x 1024 image at rate 2, 16 GiB at 2048 x 2048 (or at 1024 with rate 1). Here
only the queries whose raw patch touches the hole are scored, in chunks whose score block
(rows scored x keys) holds at most ``max_elements`` elements (at least one query: ``9 * keys``
with ``fuse``), and under autograd each chunk is recomputed in the backward pass
(``torch.utils.checkpoint``), so training memory is bounded the same way. What remains grows
linearly with the image: the patch matrices, ``(HW / rate^2) x C x 9`` and ``x C x (2 rate)^2``.
``benchmarks/attention_memory.py`` measures it.

Choices: cosine similarity normalises the queries too (the paper's equation 1; the official
code normalises only the keys, which gives the same ranking per query); hole keys are left out
of the softmax (the official code zeroes their scores, which still gives them weight); the
fusion is 2-D with zero padding (the official code fuses along the flattened index, wrapping
across rows); the downscaled mask is max-pooled (any hole pixel makes a hole).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from inpaint_core.errors import InvalidInputError

__all__ = ["DEFAULT_MAX_ELEMENTS", "ContextualAttention"]

#: Default bound of one score block: 16.8 M elements, 64 MiB in float32.
DEFAULT_MAX_ELEMENTS = 2**24
#: Side of the query and key patches, and of the fusion window.
PATCH = 3
_EPS = 1e-4
_OFFSETS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))


class ContextualAttention(nn.Module):
    """Fill hole features from similar known patches; see the module docstring.

    Args:
        rate: downscaling of the matching, 1 or an even integer (2 in DeepFill).
        softmax_scale: the softmax's inverse temperature (10 in DeepFill).
        fuse: attention propagation over 3x3 neighbourhoods (DeepFill's ``fuse=True``).
        max_elements: most elements of one score block (rows scored x keys).

    No trainable parameters. ``forward(features, mask)``: features ``(B, C, H, W)`` float,
    mask ``(B, 1, H, W)`` with 1 (> 0.5) = hole; H and W multiples of ``rate``. Returns
    ``(B, C, H, W)``, equal to ``features`` outside the hole. An image without hole or without
    a single fully known 3x3 patch (e.g. a tile inside a large hole) is passed through
    unchanged: there is nothing to copy from.
    """

    def __init__(
        self,
        rate: int = 2,
        softmax_scale: float = 10.0,
        fuse: bool = True,
        max_elements: int = DEFAULT_MAX_ELEMENTS,
    ) -> None:
        super().__init__()
        if (
            not isinstance(rate, int)
            or isinstance(rate, bool)
            or rate < 1
            or (rate > 1 and rate % 2)
        ):
            raise InvalidInputError(f"rate={rate!r} must be 1 or an even integer")
        if not isinstance(max_elements, int) or max_elements < 1:
            raise InvalidInputError(f"max_elements={max_elements!r} must be an integer >= 1")
        if not softmax_scale > 0:
            raise InvalidInputError(f"softmax_scale={softmax_scale!r} must be > 0")
        self.rate, self.softmax_scale = rate, float(softmax_scale)
        self.fuse, self.max_elements = bool(fuse), max_elements
        # Raw (value) patches: 2*rate square at stride rate (DeepFill), 3x3 at rate 1.
        self.raw_kernel = PATCH if rate == 1 else 2 * rate
        self.raw_padding = 1 if rate == 1 else rate // 2

    def extra_repr(self) -> str:
        return (f"rate={self.rate}, softmax_scale={self.softmax_scale}, fuse={self.fuse}, "
                f"max_elements={self.max_elements}")

    def forward(self, features: Tensor, mask: Tensor) -> Tensor:
        """Attend; see the class docstring."""
        batch = self._check(features, mask)[0]
        holes = mask[:, 0] > 0.5
        return torch.stack([self._attend(features[i], holes[i]) for i in range(batch)])

    def _check(self, features: Tensor, mask: Tensor) -> tuple[int, int, int, int]:
        if features.ndim != 4:
            raise InvalidInputError(f"features {tuple(features.shape)} are not (B, C, H, W)")
        b, c, h, w = features.shape
        if tuple(mask.shape) != (b, 1, h, w):
            raise InvalidInputError(
                f"mask shape {tuple(mask.shape)} does not match features {(b, 1, h, w)}"
            )
        if h % self.rate or w % self.rate:
            raise InvalidInputError(
                f"features {h} x {w} are not multiples of rate={self.rate}; pad them"
            )
        return b, c, h, w

    # --- one image ---------------------------------------------------------------------------
    def _attend(self, f: Tensor, hole: Tensor) -> Tensor:
        """``f`` ``(C, H, W)``, ``hole`` bool ``(H, W)`` -> ``(C, H, W)``."""
        height, width = f.shape[1:]
        r, kernel, padding = self.rate, self.raw_kernel, self.raw_padding
        small_h, small_w = height // r, width // r
        hole_map = hole[None, None].to(f.dtype)
        # Queries: small positions whose raw patch touches a hole pixel.
        touched = F.max_pool2d(hole_map, kernel, stride=r, padding=padding)
        queries = torch.nonzero(touched.flatten() > 0).flatten()
        # Keys: small positions whose 3x3 patch of the (max-pooled) small mask is fully known.
        small_hole = F.max_pool2d(hole_map, r) if r > 1 else hole_map
        near_hole = F.max_pool2d(small_hole, PATCH, stride=1, padding=PATCH // 2)
        keys = torch.nonzero(near_hole.flatten() == 0).flatten()
        if len(queries) == 0 or len(keys) == 0:
            return f
        small = F.avg_pool2d(f[None], r) if r > 1 else f[None]
        patches = F.unfold(small, PATCH, padding=PATCH // 2)[0].T  # (L, C * 9)
        patches = patches / patches.norm(dim=1, keepdim=True).clamp_min(_EPS)
        raw = F.unfold(f[None], kernel, stride=r, padding=padding)[0].T  # (L, C * k * k)
        raw_keys = raw[keys]

        chunks = self._plan(queries, len(keys), small_h, small_w)
        use_checkpoint = len(chunks) > 1 and torch.is_grad_enabled() and f.requires_grad
        values = []
        for start, stop in chunks:
            args = (patches, raw_keys, keys, queries[start:stop], small_h, small_w)
            if use_checkpoint:
                values.append(checkpoint(self._values, *args, use_reentrant=False))
            else:
                values.append(self._values(*args))
        columns = raw.new_zeros(raw.shape).index_copy(0, queries, torch.cat(values))
        size = (height, width)
        rebuilt = F.fold(columns.T[None], size, kernel, stride=r, padding=padding)[0]
        ones = raw.new_ones(1, kernel * kernel, raw.shape[0])
        overlap = F.fold(ones, size, kernel, stride=r, padding=padding)[0]
        return torch.where(hole[None], rebuilt / overlap.clamp_min(1.0), f)

    def _plan(self, queries: Tensor, n_keys: int, h: int, w: int) -> list[tuple[int, int]]:
        """Split ``queries`` into ``[start, stop)`` runs whose score block fits the bound."""
        columns = h * w if self.fuse else n_keys
        target = max(1, self.max_elements // columns)
        chunks, start, total = [], 0, len(queries)
        while start < total:
            size = min(target, total - start)
            while self.fuse and size > 1 and len(self._rows(queries[start:start + size], h, w)[0]
                                                 ) > target:
                size //= 2
            chunks.append((start, start + size))
            start += size
        return chunks

    @staticmethod
    def _rows(queries: Tensor, h: int, w: int) -> tuple[Tensor, Tensor]:
        """The small positions the fused scores of ``queries`` need, and where each lies.

        Returns ``(rows, index)``: the sorted in-bounds positions ``q + d``, and ``(n, 9)``
        indices into ``rows`` per offset ``d``, ``len(rows)`` for an out-of-bounds one.
        """
        offsets = torch.tensor(_OFFSETS, device=queries.device)
        y = queries[:, None] // w + offsets[:, 0]
        x = queries[:, None] % w + offsets[:, 1]
        inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        flat = torch.where(inside, y * w + x, h * w)  # h * w: the out-of-bounds sentinel
        unique, index = torch.unique(flat, return_inverse=True)
        return unique[unique < h * w], index

    def _values(self, patches: Tensor, raw_keys: Tensor, keys: Tensor, queries: Tensor,
                h: int, w: int) -> Tensor:
        """Attention-weighted raw patches ``(n, C * k * k)`` for ``n`` queries."""
        if self.fuse:
            scores = self._fused_scores(patches, queries, h, w)[:, keys]
        else:
            scores = patches[queries] @ patches[keys].T
        attention = torch.softmax(scores * self.softmax_scale, dim=1)
        return attention @ raw_keys

    def _fused_scores(self, patches: Tensor, queries: Tensor, h: int, w: int) -> Tensor:
        """``(n, h * w)``: ``sum_d score(q + d, k + d)`` over the 3x3 offsets, zero outside."""
        rows, index = self._rows(queries, h, w)
        scores = (patches[rows] @ patches.T).view(len(rows), h, w)
        padded = F.pad(scores, (1, 1, 1, 1))
        padded = torch.cat([padded, padded.new_zeros(1, h + 2, w + 2)])  # the sentinel's row
        fused = padded.new_zeros(len(queries), h, w)
        for j, (dy, dx) in enumerate(_OFFSETS):
            fused = fused + padded[index[:, j], 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        return fused.view(len(queries), h * w)
