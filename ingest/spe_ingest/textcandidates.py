"""Candidate text regions in one frame, from the pixels alone (no OCR).

Burned-in text is drawn with one ink value: its stroke pixels have
neighbours of exactly the same value (all samples) and stand out from their
surroundings, in either polarity.  Noise, speckle and anatomy have neither
property, flat backgrounds lack the contrast.  Such pixels form pieces of
one value (a letter, or part of one), and pieces of one value close together
form word- and line-sized groups.  A group is a candidate when nearly all
the pixels of its value are ink, over the frame (an overlay's colour) or
around the group itself (faint or small text shares its value with anatomy
elsewhere in the frame, not next to it).  ``ocr.TextFinder`` has Tesseract
confirm them.
"""
from __future__ import annotations

import numpy as np

MIN_CONTRAST = 0.12          # ink against its surroundings, share of the frame's range
MIN_INK_SHARE = 0.4         # of a value's pixels that must be ink for it to be a text colour
MIN_REGION_SHARE = 0.6       # else: of a value's pixels near a group, the share that is ink
MIN_REGION_INK = 12          # ink pixels of a group judged on its neighbourhood alone
REGION_MARGIN = 5            # px around a group: its neighbourhood
MIN_PIECE = 3                # pixels of one value, connected: a piece of a letter
GROUP_GAP = 11               # pieces of one value closer than this (px) form a group

def candidates(values: np.ndarray, grey: np.ndarray,
               done: np.ndarray | None = None) -> list[tuple]:
    """Pixel groups that look like drawn text: ((x, y, w, h), letter size in
    px, the grey level of their ink)."""
    from scipy import ndimage
    h, w = grey.shape
    if h < 3 or w < 3:
        return []
    key = values[..., 0] if values.shape[2] == 1 else \
        (values[..., 0] << 42) | (values[..., 1] << 21) | values[..., 2]
    # stroke pixels: a neighbour of exactly the same value (all samples)
    padded = np.pad(key, 1, mode="edge")
    flat = np.zeros((h, w), bool)
    for dy, dx in _NEIGHBOURS:
        flat |= padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] == key
    ink = flat & contrasted(grey)
    if done is not None:   # blanked boxes are flat and have edges; they are not text
        ink &= ~ndimage.binary_dilation(done, iterations=2)
    if not ink.any():
        return []
    pieces = _pieces(key, ink)
    if not len(pieces):
        return []
    groups = _groups(pieces)
    # Text is drawn with one value, and nearly all of that value's pixels
    # near the text are ink.  A value of noise or anatomy has ink pixels by
    # chance among many others.  Judged over the frame first (cheap, and
    # what a light-on-dark annotation overlay gives), else over the group's
    # own neighbourhood: faint or small text on a busy frame shares its
    # value with anatomy elsewhere, not next to it.
    inked = key[ink]
    uniq, counts = np.unique(inked, return_counts=True)
    everywhere = np.searchsorted(np.sort(key, axis=None), np.stack([uniq, uniq + 1]))
    total = everywhere[1] - everywhere[0]
    frame_text = set(uniq[(counts >= 8) & (counts >= MIN_INK_SHARE * total)].tolist())
    out = []
    for value, (x0, y0, x1, y1), ink_pixels, letters, (iy, ix) in groups:
        if ink_pixels < 8:
            continue
        if value not in frame_text:
            gx0, gy0 = max(0, x0 - REGION_MARGIN), max(0, y0 - REGION_MARGIN)
            gx1, gy1 = min(w, x1 + REGION_MARGIN), min(h, y1 + REGION_MARGIN)
            near = int((key[gy0:gy1, gx0:gx1] == value).sum())
            if ink_pixels < MIN_REGION_INK or ink_pixels < MIN_REGION_SHARE * near:
                continue
        # the box of the group as the ink dilated into words: 5 px around
        bx0, by0 = max(0, x0 - 5), max(0, y0 - 5)
        bx1, by1 = min(w, x1 + 5), min(h, y1 + 5)
        out.append(((bx0, by0, bx1 - bx0, by1 - by0), letters, float(grey[iy, ix])))
    return out


def contrasted(grey: np.ndarray) -> np.ndarray:
    """Pixels that stand out from their 21x21 surroundings by ``MIN_CONTRAST``
    of the frame's 0.5-99.5 percentile range, in either polarity."""
    from scipy import ndimage
    lo, hi = np.percentile(grey, (0.5, 99.5))
    span = float(hi - lo) or float(grey.max() - grey.min()) or 1.0
    local = ndimage.uniform_filter(grey.astype(np.float32), size=21, mode="nearest")
    return np.abs(grey - local) >= MIN_CONTRAST * span


_NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def _pieces(key: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """Connected pieces of ink of one value (8-connected, ``MIN_PIECE`` pixels or more): rows of
    (value, x0, y0, x1, y1, pixels, y, x of one of its pixels), x1/y1 exclusive."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    h, w = key.shape
    index = np.full((h, w), -1, np.int64)
    ys, xs = np.nonzero(ink)
    n = len(ys)
    index[ys, xs] = np.arange(n)
    src, dst = [], []
    for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):
        y2, x2 = ys + dy, xs + dx
        ok = (y2 < h) & (x2 >= 0) & (x2 < w)
        a, y2, x2 = np.nonzero(ok)[0], y2[ok], x2[ok]
        b = index[y2, x2]
        same = (b >= 0) & (key[y2, x2] == key[ys[a], xs[a]])
        src.append(a[same])
        dst.append(b[same])
    src, dst = np.concatenate(src), np.concatenate(dst)
    graph = coo_matrix((np.ones(len(src), np.int8), (src, dst)), shape=(n, n))
    count, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels, minlength=count)
    x0 = np.full(count, w, np.int64)
    y0 = np.full(count, h, np.int64)
    x1 = np.zeros(count, np.int64)
    y1 = np.zeros(count, np.int64)
    np.minimum.at(x0, labels, xs)
    np.minimum.at(y0, labels, ys)
    np.maximum.at(x1, labels, xs + 1)
    np.maximum.at(y1, labels, ys + 1)
    value = np.zeros(count, np.int64)
    value[labels] = key[ys, xs]
    first = np.full(count, n, np.int64)       # a pixel of the piece (raster order)
    np.minimum.at(first, labels, np.arange(n))
    keep = sizes >= MIN_PIECE
    return np.stack([value, x0, y0, x1, y1, sizes, ys[first], xs[first]], axis=1)[keep]


def _groups(pieces: np.ndarray) -> list[tuple]:
    """Pieces of one value less than ``GROUP_GAP`` px apart, as words and
    lines: (value, (x0, y0, x1, y1), ink pixels, letter size, (y, x) of an
    ink pixel)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    order = np.argsort(pieces[:, 0], kind="stable")
    pieces = pieces[order]
    n = len(pieces)
    src, dst = [np.arange(n)], [np.arange(n)]
    starts = np.flatnonzero(np.r_[True, pieces[1:, 0] != pieces[:-1, 0], True])
    for s, e in zip(starts[:-1], starts[1:]):
        if e - s < 2:
            continue
        p = pieces[s:e]
        for c in range(0, e - s, 256):     # bounded memory for common values
            q = p[c:c + 256]
            gap_x = np.maximum(q[:, None, 1], p[None, :, 1]) \
                - np.minimum(q[:, None, 3], p[None, :, 3])
            gap_y = np.maximum(q[:, None, 2], p[None, :, 2]) \
                - np.minimum(q[:, None, 4], p[None, :, 4])
            a, b = np.nonzero((gap_x < GROUP_GAP) & (gap_y < GROUP_GAP))
            src.append(a + s + c)
            dst.append(b + s)
    src, dst = np.concatenate(src), np.concatenate(dst)
    graph = coo_matrix((np.ones(len(src), np.int8), (src, dst)), shape=(n, n))
    count, labels = connected_components(graph, directed=False)
    x0 = np.full(count, np.iinfo(np.int64).max, np.int64)
    y0 = x0.copy()
    x1 = np.zeros(count, np.int64)
    y1 = np.zeros(count, np.int64)
    np.minimum.at(x0, labels, pieces[:, 1])
    np.minimum.at(y0, labels, pieces[:, 2])
    np.maximum.at(x1, labels, pieces[:, 3])
    np.maximum.at(y1, labels, pieces[:, 4])
    ink = np.bincount(labels, weights=pieces[:, 5], minlength=count).astype(np.int64)
    value = np.zeros(count, np.int64)
    value[labels] = pieces[:, 0]
    # the size of the letters: the median extent of the pieces of 3 pixels
    # or more (a letter is a piece; its larger side is about the text
    # height); pairs of pixels are bits of small letters and say nothing
    extents = np.maximum(pieces[:, 3] - pieces[:, 1], pieces[:, 4] - pieces[:, 2])
    sized = pieces[:, 5] >= 3
    by_group = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[by_group], np.arange(count + 1))
    out = []
    for g in np.flatnonzero(ink >= 8):
        members = by_group[bounds[g]:bounds[g + 1]]
        letters = float(np.median(extents[members[sized[members]]] if sized[members].any()
                                  else extents[members].max()))
        out.append((int(value[g]), (int(x0[g]), int(y0[g]), int(x1[g]), int(y1[g])),
                    int(ink[g]), letters, (int(pieces[members[0], 6]), int(pieces[members[0], 7]))))
    return out
