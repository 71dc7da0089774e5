"""``score``: a model run over a whole stack, lazily per dask chunk, back on the stack's grid."""

from __future__ import annotations

import contextlib
import itertools
import logging
import uuid
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from xprospect._dask import chunk_threads, is_main_thread, study_mask
from xprospect._dims import (
    ELEMENT_DIM,
    SAMPLE_DIM,
    get_crs,
    grid_geometry,
    length_to_cells,
    write_crs,
)
from xprospect._progress import ChunkProgress, distributed_client, progress_bar
from xprospect._sanity import DomainCheck, warn_if_out_of_domain
from xprospect._torch import keep_torch_threads, resolve_device
from xprospect.exceptions import DataError, ModelCardError, XProspectDeprecationWarning
from xprospect.score.lattice import (
    UPSAMPLE_MODES,
    halo,
    lattice_deps,
    lattice_range,
    upsample_axis,
)
from xprospect.score.samples import score_samples
from xprospect.score.windows import is_window_set, score_window_set

__all__ = ["EDGE_MODES", "NAN_MODES", "score"]

log = logging.getLogger("xprospect.score")

#: ``"pad"``: cells outside the grid take ``pad_value`` (0.0, the training mean of normalised
#: data); ``"reflect"``: the grid is mirrored about its edge cells (``numpy.pad(mode="reflect")``).
EDGE_MODES = ("pad", "reflect")
#: ``"mask"``: NaN (or infinite) inputs are replaced by ``fill_value`` before the model and
#: cells whose own input holds one (any element) are NaN in the map; ``"fill"``: replaced,
#: every cell scored; ``"propagate"``: NaN and infinities go into the model as they are. A
#: model with ``nan_aware = True`` (the convolutional autoencoders and STOAD: NaN cells are
#: missing data to them) gets its NaN (and infinite, as NaN) cells as missing under
#: ``"mask"`` too, and cells whose own input holds one stay NaN.
NAN_MODES = ("mask", "fill", "propagate")


def _per_axis(v: int | Sequence[int], nd: int, what: str) -> tuple[int, ...]:
    arr = np.asarray(v)
    out = np.broadcast_to(arr, (nd,)) if arr.ndim == 0 else arr
    if out.shape != (nd,) or np.any(out < 1):
        raise DataError(f"{what}={v!r} must be a positive int or {nd} of them")
    return tuple(int(x) for x in out)


def _min_chunks(chunks: tuple[int, ...], need: int) -> tuple[int, ...]:
    """Merge neighbouring chunks until each holds at least ``need`` cells (when possible)."""
    out: list[int] = []
    for c in chunks:
        if out and out[-1] < need:
            out[-1] += c
        else:
            out.append(c)
    if len(out) > 1 and out[-1] < need:
        last = out.pop()
        out[-1] += last
    return tuple(out)


def _needed_lattice(want: np.ndarray, deps: Sequence[np.ndarray]) -> np.ndarray:
    """Lattice points some wanted cell reads: ``want`` projected through each axis's deps."""
    m = want.astype("float32")
    for ax, dep in enumerate(deps):
        m = np.moveaxis(np.tensordot(m, dep.astype("float32"), axes=([ax], [0])), -1, ax)
    return m > 0


def _score_block(
    xb: np.ndarray,
    want: np.ndarray | None = None,
    *,
    loc: Sequence[tuple[int, int]],
    shape: Sequence[int],
    depth: Sequence[int],
    handle: Any,
    method: str,
    window: Sequence[int],
    stride: Sequence[int],
    upsample: str,
    edge: str,
    pad_value: float,
    nan: str,
    fill_value: float,
    batch_size: int,
    tile: Sequence[int],
) -> np.ndarray:
    """Score the cells ``loc`` of a block ``xb`` (C, *spatial) holding them plus up to ``depth``.

    ``want`` (boolean, the block's own cells) is the study mask: a block without a wanted
    cell returns NaN before anything is padded, cut or sent to the model; otherwise only the
    dense tiles and lattice windows that some wanted cell reads are scored, and unwanted
    cells are NaN.
    """
    # torch: loaded when a network is scored (lazy)
    from xprospect.score._device import score_dense_tiles, score_lattice

    out_shape = tuple(b - a for a, b in loc)
    if want is not None:
        want = np.asarray(want, dtype=bool)
        if not want.any():
            return np.full(out_shape, np.nan, dtype="float32")
        if want.all():
            want = None
    xb = np.asarray(xb, dtype="float32")
    # where the block starts and how much halo is missing at the grid edges
    pads, core = [], [slice(None)]
    for (a, b), n, d in zip(loc, shape, depth, strict=True):
        lo, hi = max(0, a - d), min(n, b + d)
        pads.append((d - (a - lo), d - (hi - b)))
        core.append(slice(a - lo, a - lo + (b - a)))
    mask = None
    if nan != "propagate":
        # an infinite input (log10 of a zero assay) is missing data as NaN is: filled (or
        # NaN for a NaN-aware model) and its cell masked, never fed to the model as +-inf
        bad = ~np.isfinite(xb)
        if nan in ("mask", "aware"):
            mask = bad[tuple(core)].any(axis=0)
        if bad.any():
            xb = np.where(bad, np.float32(np.nan if nan == "aware" else fill_value), xb)
    if any(p != (0, 0) for p in pads):
        if edge == "pad":
            xb = np.pad(xb, [(0, 0), *pads], mode="constant", constant_values=pad_value)
        else:
            xb = np.pad(xb, [(0, 0), *pads], mode="reflect")

    if method == "dense":
        before, after = window[0] // 2, window[0] - 1 - window[0] // 2
        tiles = []
        for st in itertools.product(
            *[range(0, n, t) for n, t in zip(out_shape, tile, strict=True)]
        ):
            tl = tuple(
                slice(s0, min(n, s0 + t)) for s0, n, t in zip(st, out_shape, tile, strict=True)
            )
            if want is not None and not want[tl].any():
                continue  # a tile without a wanted cell is never sent to the model
            src = tuple(
                slice(d + sl.start - before, d + sl.stop + after)
                for sl, d in zip(tl, depth, strict=True)
            )
            tiles.append((src, tl))
        out = score_dense_tiles(handle, xb, tiles, out_shape)
    else:
        ranges = [
            lattice_range(a, b, n, w, s, upsample)
            for (a, b), n, w, s in zip(loc, shape, window, stride, strict=True)
        ]
        counts = tuple(k1 - k0 + 1 for k0, k1 in ranges)
        # first lattice window's first cell, in block coordinates
        origin = [
            k0 * s - w // 2 - (a - d)
            for (k0, _), (a, _), w, s, d in zip(ranges, loc, window, stride, depth, strict=True)
        ]
        which = None
        if want is not None:
            deps = [
                lattice_deps(a, b, k0, k1, n, w, s, upsample)
                for (a, b), (k0, k1), n, w, s in zip(
                    loc, ranges, shape, window, stride, strict=True
                )
            ]
            which = np.flatnonzero(_needed_lattice(want, deps))
        res = score_lattice(
            handle,
            xb,
            window=window,
            stride=stride,
            origin=origin,
            counts=counts,
            which=which,
            batch_size=batch_size,
        )
        if which is None:
            lat = res.reshape(counts).astype("float32")
        else:
            lat = np.full(counts, np.nan, dtype="float32")
            lat.flat[which] = res
        for ax in range(len(shape)):
            (a, b), n, w, s, (k0, _) = loc[ax], shape[ax], window[ax], stride[ax], ranges[ax]
            lat = upsample_axis(lat, ax, a, b, k0, n, w, s, upsample)
        out = np.ascontiguousarray(lat, dtype="float32")
    if mask is not None:
        out[mask] = np.nan
    if want is not None:
        out[~want] = np.nan
    return out


def _pad_value(pad_value: float | None, model: Any) -> float:
    """Return the value of cells beyond the grid: NaN (missing) for NaN-aware models, else 0."""
    if pad_value is not None:
        return float(pad_value)
    return float("nan") if getattr(model, "nan_aware", False) else 0.0


def _model_name(model: Any) -> str:
    return str((getattr(model, "config", None) or {}).get("name", type(model).__name__))


def _resolve_mask(mask: Any, geom: Any) -> Any:
    """Return the study mask as a boolean numpy or dask array on the grid dims, or None."""
    if mask is None:
        return None
    if isinstance(mask, xr.Dataset):
        m = study_mask(mask)
        if m is None:
            raise DataError("mask= is a Dataset without a boolean 'mask' variable")
        mask = xr.DataArray(m, dims=grid_geometry(mask).dims)
    if isinstance(mask, xr.DataArray):
        if set(mask.dims) != set(geom.dims):
            raise DataError(f"mask= has dims {mask.dims}; the stack's grid is {geom.dims}")
        mask = mask.transpose(*geom.dims).data
    if tuple(np.shape(mask)) != tuple(geom.shape):
        raise DataError(f"mask= has shape {np.shape(mask)}; the grid is {tuple(geom.shape)}")
    if np.dtype(getattr(mask, "dtype", None)) != np.dtype(bool):
        raise DataError(f"mask= must be boolean (True = score the cell); got {mask.dtype}")
    return mask if hasattr(mask, "dask") else np.asarray(mask)


def _annotations(resources: Any, device: Any) -> dict[str, Any]:
    """Dask annotations of the scoring tasks: the worker resources they need, if any."""
    if resources is False or (resources is None and str(device) == "cpu"):
        return {}
    if resources is None:
        client = distributed_client()
        if client is None:
            return {}
        try:
            workers = client.scheduler_info(n_workers=-1)["workers"]
        except TypeError:  # older distributed: every worker is listed
            workers = client.scheduler_info()["workers"]
        declared = any("GPU" in (w.get("resources") or {}) for w in workers.values())
        return {"resources": {"GPU": 1}} if declared else {}
    if isinstance(resources, Mapping) and all(
        isinstance(v, int | float) and v > 0 for v in resources.values()
    ):
        return {"resources": dict(resources)} if resources else {}
    raise DataError(
        f"resources={resources!r}; expected None (auto), False or a mapping such as {{'GPU': 1}}"
    )


def _is_baseline(model: Any) -> bool:
    """Tell whether ``model`` is one of :mod:`xprospect.baselines` (scikit-learn models)."""
    if not hasattr(model, "predict") or hasattr(model, "score_windows"):
        return False
    from xprospect.baselines.base import BaselineModel  # scikit-learn: loaded for baselines only

    return isinstance(model, BaselineModel)


def _refuse_grid_options(what: str, given: dict[str, Any]) -> None:
    """Raise when a stack-lattice option is set for a model or input it does not apply to."""
    defaults = {
        "window": None,
        "stride": 1,
        "upsample": "nearest",
        "method": "auto",
        "edge": "pad",
        "nan": "mask",
        "tile": None,
    }
    odd = sorted(k for k, v in given.items() if not _same(v, defaults[k]))
    if odd:
        raise DataError(f"{', '.join(odd)} do not apply to {what}; leave them at their defaults")


def _same(a: Any, b: Any) -> bool:
    return (a is None and b is None) or (
        a is not None and b is not None and np.array_equal(np.asarray(a), np.asarray(b))
    )


def _require_card(model: Any, allow_no_card: bool) -> None:
    """Refuse a network without a card unless the caller opted in explicitly."""
    # lazy: models/ loads torch, needed only when a network is scored
    from xprospect.models.card import has_card

    if allow_no_card or has_card(getattr(model, "card", None)):
        return
    raise ModelCardError(
        f"the {type(model).__name__} has no model card describing its training data "
        "(elements, resolution, CRS, normalisation), so scoring could check nothing and "
        "would normalise nothing; train it with xprospect.train.fit (which writes the card) "
        "or pass allow_no_card=True to score your own or an untrained module anyway"
    )


def score(
    stack: Any,
    model: Any,
    *,
    window: int | Sequence[int] | None = None,
    stride: int | Sequence[int] = 1,
    batch_size: int = 64,
    device: Any = "auto",
    upsample: str = "nearest",
    method: str = "auto",
    edge: str = "pad",
    pad_value: float | None = None,
    nan: str = "mask",
    fill_value: float = 0.0,
    amp: Any = "auto",
    prefetch: int | None = None,
    tile: int | Sequence[int] | None = None,
    allow_no_card: bool = False,
    mask: Any = None,
    compile: bool | Mapping[str, Any] = False,
    resources: Mapping[str, float] | bool | None = None,
    progress: bool | None = None,
) -> Any:
    """Apply a fitted model: score every cell of a stack, lazily over dask chunks.

    The one verb that applies any fitted model of the package: a network
    (:class:`~xprospect.models.ProspectModel`) or a classical baseline
    (:mod:`xprospect.baselines`, whose map is exactly its ``predict(stack)``). Given windows
    (a PatchSet or torch dataset) instead of a stack, it scores each window
    (:func:`xprospect.score.windows.score_window_set`).

    Window models (e.g. ResNets) are evaluated on windows centred on a global stride lattice
    (cells ``k * stride`` from the grid's first cell; see :mod:`xprospect.score.lattice`), in
    batches, and the lattice scores are upsampled back to every cell. Dense (fully
    convolutional) models (``model.dense``) run :meth:`score_dense` on whole chunks with the
    halo ``model.context`` needs, giving at every cell what the window centred on it gives.
    Either way each chunk is scored by ``dask.array.map_overlap``-style tasks (the chunk plus a
    halo derived from the model, window, stride and upsampling), so the same cells are scored
    whatever the chunking, their values within float32 rounding (1e-6 x max(1, max |score|);
    CPU kernels choose their summation order by input shape, so not bit for bit), and it runs
    on any dask scheduler, ``dask.distributed`` included.

    Parameters
    ----------
    stack : xarray.DataArray, xarray.Dataset, PatchSet or torch Dataset
        ``(element, y, x)`` or ``(element, z, y, x)``, numpy or dask backed; or windows; or
        a samples table (Dataset along ``sample``), scored one sample at a time by a
        per-sample model (VAE, :class:`~xprospect.models.AnomalyEnsemble` of them; through
        :func:`~xprospect.score.score_samples`) or a detector fitted on samples.
    model : ProspectModel or BaselineModel
        A trained model (see :mod:`xprospect.models.base`) or a fitted baseline (only
        ``stack`` is read; the window, lattice, edge and NaN options do not apply to it). When
        a network's ``card`` lists elements,
        :func:`~xprospect.models.card.check_card` refuses a stack that differs (elements,
        order, resolution, CRS) and :func:`~xprospect.models.card.normalise` applies the card's
        mean and std before scoring.
    window : int or sequence of int, optional
        Window edge in cells (default ``model.window``). Window models only.
    stride : int or sequence of int
        Lattice step in cells (window models only; dense models score every cell).
    batch_size : int
        Windows per batch sent to the device.
    device : str or torch.device
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda:0"``...
    upsample : {"nearest", "bilinear", "mean"}
        How lattice scores reach every cell: nearest lattice point, (bi/tri)linear interpolation,
        or the mean of every window covering the cell (needs ``window >= stride``).
    method : {"auto", "dense", "windows"}
        ``"auto"``: dense when ``model.dense``; ``"windows"`` forces window-by-window scoring.
    edge : {"pad", "reflect"}
        Cells outside the grid: ``pad_value`` (after normalisation) or mirrored.
    pad_value : float, optional
        See ``edge``. Default 0.0, except for a NaN-aware model (``nan_aware = True``: the
        convolutional autoencoders, STOAD), for which cells beyond the grid are missing data
        (NaN) like the grid's own NaN cells, so that the border is not read as zeros.
    nan : {"mask", "fill", "propagate"}
        NaN inputs are filled with ``fill_value`` and the cells holding them masked to NaN
        (default), filled and scored, or passed to the model. An infinite input is treated
        as NaN under ``"mask"`` and ``"fill"``. A model declaring
        ``nan_aware = True`` (the convolutional autoencoders, STOAD) gets its NaN cells
        as missing data under ``"mask"`` (no fill; its partial convolutions skip them) and
        cells holding NaN stay NaN.
    fill_value : float
        See ``nan`` (recorded as ``attrs["nan_fill_value"]``).
    amp : {"auto", True, False}
        Mixed precision (bfloat16 when supported, else float16) on CUDA; never on CPU.
    prefetch : int, optional
        Deprecated and ignored: windows are now cut on the device from the chunk uploaded
        once, so no batch is gathered ahead on the host (a warning says so when given).
    tile : int or sequence of int, optional
        Largest piece of a chunk a dense model sees at once (default 512 cells per axis in 2-D,
        64 in 3-D), bounding device memory; values do not depend on it.
    allow_no_card : bool
        Score a network whose ``card`` describes no training data (none, empty, or notes
        only: a user's own or an untrained module). Such a model is scored with no check of
        elements, resolution or CRS and no normalisation, so this is an explicit opt-in (as
        :func:`~xprospect.train.load_checkpoint`'s); by default it is refused. Every model
        the package trains (``train.fit``, ``train.fit_anomaly``...) carries a card.
    mask : xarray.Dataset, DataArray or numpy.ndarray, optional
        Boolean study mask on the stack's grid (True = score the cell), e.g. a template
        from ``make_grid`` with its ``mask`` variable or ``ds.prospect.mask_distance(...)``.
        A chunk without a True cell is NaN without any model call; in the others only the
        dense tiles and lattice windows that some True cell reads are scored. Cells outside
        the mask are NaN; the others keep exactly their unmasked values.
    compile : bool or mapping
        Wrap the model's scoring method in :func:`torch.compile` once per worker process
        and device (a mapping: keyword arguments for it, e.g. ``{"mode": "max-autotune"}``).
        Opt-in: the first chunk pays the compilation, and compiled kernels may round
        differently from eager ones.
    resources : mapping, bool or None
        Dask worker resources each chunk's task needs (:func:`dask.annotate`). None: on a
        ``dask.distributed`` cluster whose workers declare a ``"GPU"`` resource, and unless
        ``device="cpu"``, ``{"GPU": 1}``; nothing otherwise. False: never annotate. Dask's
        low-level task fusion drops layer annotations (a documented dask caveat): compute
        under ``dask.config.set({"optimization.fuse.active": False})`` for the scheduler
        to see them.
    progress : bool or None
        A bar of chunks scored / total with an ETA when the map is computed by the local
        threaded or synchronous scheduler (``.values``, ``.compute()``, ``xp.to_zarr``);
        None draws it only on a terminal or in a notebook, False never (see
        :mod:`xprospect._progress`; on a ``dask.distributed`` cluster use
        ``xp.to_zarr(..., progress=True)``, which shows the cluster's progress).

    Returns
    -------
    xarray.DataArray or numpy.ndarray
        ``prospectivity`` on the stack's grid (dims, coords, CRS), float32, with the stack's
        spatial chunks when it is dask backed; ``attrs`` record model, method, window, stride,
        upsample, edge and NaN policies. A baseline's map is its ``predict(stack)`` (named
        after its output, float64). For windows: an ``(n,)`` array, one score per window.
        For samples: a DataArray along ``sample``.

    Raises
    ------
    ModelCardError
        The stack does not match the model (channels, dimensionality, card), or the network
        has no card and ``allow_no_card`` is False.

    Warns
    -----
    XProspectWarning
        When the normalised stack's elements sit far outside the training data's domain
        (:func:`xprospect._sanity.warn_if_out_of_domain`): at once for an in-memory stack;
        for a lazy stack when the map is computed, from the chunks the score reads anyway
        (:class:`xprospect._sanity.DomainCheck`; no compute of its own).
    """
    options = {
        "window": window,
        "stride": stride,
        "upsample": upsample,
        "method": method,
        "edge": edge,
        "nan": nan,
        "tile": tile,
    }
    if isinstance(stack, xr.Dataset) and SAMPLE_DIM in stack.dims:
        # a samples table: one score per sample, from a per-sample model or detector
        _refuse_grid_options("samples", options)
        if _is_baseline(model):
            return model.predict(stack)
        _require_card(model, allow_no_card)
        return score_samples(model, stack)
    if _is_baseline(model):
        _refuse_grid_options(f"the baseline {type(model).__name__}", options)
        return model.predict(stack)
    from xprospect.models.wrap import require_contract  # lazy: torch, only for a network

    require_contract(model, "score")
    _require_card(model, allow_no_card)
    if is_window_set(stack):
        _refuse_grid_options("windows already cut", options)
        return score_window_set(stack, model, batch_size=batch_size, device=device)
    # torch (behind models/ and the device runner): loaded when a network is scored
    from xprospect.models.card import check_card, normalise
    from xprospect.score._device import ModelHandle, model_digest  # lazy: torch, as above

    if not isinstance(stack, xr.DataArray) or ELEMENT_DIM not in stack.dims:
        raise DataError(
            "score needs a stack DataArray with an 'element' dimension; build one "
            "with ds.prospect.stack([...])"
        )
    geom = grid_geometry(stack)
    nd = geom.ndim
    if len(stack.dims) != nd + 1:
        raise DataError(f"the stack has dims {stack.dims}; expected {(ELEMENT_DIM, *geom.dims)}")
    stack = stack.transpose(ELEMENT_DIM, *geom.dims)
    mnd = getattr(model, "ndim", None)
    if mnd is not None and mnd != nd:
        raise ModelCardError(
            f"the model convolves over {mnd} axes; the stack is {nd}-D {geom.dims}"
        )
    n_el = stack.sizes[ELEMENT_DIM]
    if getattr(model, "in_channels", n_el) not in (0, n_el):
        raise ModelCardError(
            f"the model takes {model.in_channels} input elements; the stack has "
            f"{n_el}: {[str(e) for e in stack[ELEMENT_DIM].values]}"
        )
    card = getattr(model, "card", {}) or {}
    check_card(card, stack)
    stack = normalise(stack, card)
    if card.get("mean") is not None and stack.chunks is None:  # in memory: checked now
        warn_if_out_of_domain(stack.values, [str(e) for e in stack[ELEMENT_DIM].values])
    if method == "auto":
        method = "dense" if getattr(model, "dense", False) else "windows"
    if method not in ("dense", "windows"):
        raise DataError(f"method={method!r}; expected 'auto', 'dense' or 'windows'")
    if method == "dense" and not getattr(model, "dense", False):
        raise ModelCardError(f"{type(model).__name__} is not dense (fully convolutional)")
    if edge not in EDGE_MODES:
        raise DataError(f"edge={edge!r}; expected one of {EDGE_MODES}")
    if nan not in NAN_MODES:
        raise DataError(f"nan={nan!r}; expected one of {NAN_MODES}")
    if upsample not in UPSAMPLE_MODES:
        raise DataError(f"upsample={upsample!r}; expected one of {UPSAMPLE_MODES}")
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1; got {batch_size}")
    resolve_device(device)  # fail early on a bad or absent device
    if prefetch is not None:
        warnings.warn(
            "score(prefetch=) is deprecated and ignored: windows are cut on the device from "
            "each chunk uploaded once, so no batch is gathered ahead on the host",
            XProspectDeprecationWarning,
            stacklevel=2,
        )
    want = _resolve_mask(mask, geom)
    annotations = _annotations(resources, device)

    ctx = tuple(getattr(model, "context", (0, 0)))
    if method == "dense":
        before, after = int(ctx[0]), int(ctx[1])
        w = before + after + 1
        if w // 2 != before:
            raise ModelCardError(f"model context {ctx} is not that of a centred window")
        wins = (w,) * nd
        strides = (1,) * nd
        depth = (max(before, after),) * nd
        tiles = _per_axis(tile if tile is not None else (512 if nd == 2 else 64), nd, "tile")
    else:
        w_in = window if window is not None else getattr(model, "window", None)
        w_in = length_to_cells(w_in, stack, "window")  # "5 km" -> cells
        if w_in is None:
            if getattr(model, "dense", False):
                c0, c1 = int(ctx[0]), int(ctx[1])
                w_in = c0 + c1 + 1
            else:
                raise DataError("pass window= (the model declares none)")
        wins = _per_axis(w_in, nd, "window")
        strides = _per_axis(stride, nd, "stride")
        depth = tuple(halo(w, s, upsample) for w, s in zip(wins, strides, strict=True))
        tiles = wins

    kw: dict[str, Any] = dict(
        shape=geom.shape,
        depth=depth,
        method=method,
        window=wins,
        stride=strides,
        upsample=upsample,
        edge=edge,
        pad_value=_pad_value(pad_value, model),
        # a NaN-aware model sees its missing cells as NaN, not as fill_value
        nan="aware" if nan == "mask" and getattr(model, "nan_aware", False) else nan,
        fill_value=float(fill_value),
        batch_size=int(batch_size),
        tile=tiles,
    )
    # the same weights, options and input give the same token (and dask name) in any
    # process, so that to_zarr(resume=True) recognises the job
    data_id = stack.data.name if hasattr(stack.data, "dask") else uuid.uuid4().hex
    extra = []  # only what is set, so the tokens of plain jobs keep their old values
    if want is not None:
        extra.append(("mask", want.name if hasattr(want, "dask") else dask.base.tokenize(want)))
    if compile:
        extra.append(("compile", repr(compile)))
    token = dask.base.tokenize(
        model_digest(model),
        data_id,
        sorted(kw.items(), key=str),
        str(device),
        repr(amp),
        *extra,
    )
    kw["handle"] = ModelHandle(model, token, device, amp, compile=compile)
    data = stack.data
    if hasattr(data, "dask"):
        if len(data.chunks[0]) > 1:
            data = data.rechunk({0: -1})
        orig = data.chunks[1:]
        new = tuple(_min_chunks(c, d) for c, d in zip(orig, depth, strict=True))
        if new != orig:
            data = data.rechunk((data.chunks[0], *new))
        if card.get("mean") is not None:
            # the domain check of a lazy stack rides along with the score: an identity layer
            # on the chunks the score reads anyway (no compute of its own), see DomainCheck
            check = DomainCheck(
                [str(e) for e in stack[ELEMENT_DIM].values], data.npartitions, token
            )
            data = data.map_blocks(
                check, dtype=data.dtype, name=f"domain-check-{token}", meta=data._meta
            )
        # an axis held in one chunk has no neighbour to borrow a halo from (and dask refuses
        # a depth larger than the array, as on a raster smaller than the window)
        pad = {
            i + 1: (d if len(c) > 1 else 0) for i, (d, c) in enumerate(zip(depth, new, strict=True))
        }
        g = da.overlap.overlap(data, depth={0: 0, **pad}, boundary="none")

        args = [g]
        if want is not None:
            args.append(da.asarray(want).astype(bool).rechunk(new))
        bar = ChunkProgress(
            int(np.prod([len(c) for c in new])), f"score {_model_name(model)}", progress, token
        )

        def run(xb: np.ndarray, wb: Any = None, block_info: Any = None) -> np.ndarray:
            loc = [tuple(x) for x in block_info[None]["array-location"]]
            # a block run on the main thread (the synchronous scheduler) gives the caller
            # its torch thread count back; dask's pool threads keep the model's count
            keep = keep_torch_threads() if is_main_thread() else contextlib.nullcontext()
            with chunk_threads(), keep:
                res = _score_block(xb, wb, loc=loc, **kw)
            bar.done()
            return res

        with dask.annotate(**annotations):
            out = da.map_blocks(
                run,
                *args,
                dtype="float32",
                chunks=new,
                drop_axis=0,
                name=f"prospectivity-{token}",
                meta=np.empty((0,) * nd, "float32"),
            )
        if new != orig:
            out = out.rechunk(orig)
    else:
        wb = None if want is None else np.asarray(want, dtype=bool)
        with (
            progress_bar(1, desc=f"score {_model_name(model)}", progress=progress) as one,
            keep_torch_threads(),  # the caller's torch thread count, back after the model ran
        ):
            out = _score_block(np.asarray(data), wb, loc=[(0, n) for n in geom.shape], **kw)
            one.update(1)

    tmpl = stack.isel({ELEMENT_DIM: 0}, drop=True)
    coords = {k: v for k, v in tmpl.coords.items() if ELEMENT_DIM not in v.dims}
    res = xr.DataArray(out, dims=geom.dims, coords=coords, name="prospectivity")
    res.attrs = {
        "model": _model_name(model),
        "task": str(getattr(model, "task", "")),
        "method": method,
        "window": list(wins),
        "stride": list(strides),
        "upsample": upsample if method == "windows" else "none (dense)",
        "edge": edge,
        "pad_value": _pad_value(pad_value, model),
        "nan": nan,
        # not "fill_value": rioxarray reads that name as the map's nodata
        "nan_fill_value": float(fill_value),
    }
    log.info(
        "score: %s %s over %s, window %s, stride %s, halo %s",
        method,
        res.attrs["model"],
        dict(zip(geom.dims, geom.shape, strict=True)),
        wins,
        strides,
        depth,
    )
    crs = get_crs(stack)
    return write_crs(res, crs) if crs is not None else res
