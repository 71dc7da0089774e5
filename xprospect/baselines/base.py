"""The scikit-learn style contract of xprospect's classical baselines.

A baseline is fitted on a stack (``element``, y, x) or (``element``, z, y, x) as a table of
cells (one row per valid cell, one column per element) and predicts a georeferenced map of
the same grid, lazily over dask chunks. ``__init__`` only stores options; ``fit`` validates
input, learns attributes ending in ``_`` and returns ``self``; randomness comes from
``seed``.
"""

from __future__ import annotations

import logging
from abc import ABCMeta, abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import numpy as np
import xarray as xr
from sklearn.base import BaseEstimator

from xprospect._dims import ELEMENT_DIM, SAMPLE_DIM, get_crs, sample_coords, write_crs
from xprospect.baselines._table import cell_table, check_stack, element_names, grid_mask
from xprospect.exceptions import DataError, ModelCardError
from xprospect.points import (
    as_points,
    cells_near_points,
    cells_to_points,
    default_buffer,
    point_cells,
    sample_negatives,
    sample_table,
)

__all__ = ["AnomalyDetector", "BaselineModel", "SupervisedModel"]

log = logging.getLogger(__name__)


def _label_cells(points: Any, stack: xr.DataArray, buffer: float | None) -> tuple[np.ndarray, int]:
    """Return the unique flat cells holding a point (or within ``buffer``), and # off grid."""
    cells = point_cells(points, stack, require=False)
    if buffer:
        return cells_near_points(points, stack, buffer), cells.n_outside
    return np.unique(cells.flat), cells.n_outside


class BaselineModel(BaseEstimator, metaclass=ABCMeta):
    """Base of the classical baselines; subclasses implement ``_fit_table``/``_score_table``.

    Attributes set by ``fit``: ``elements_`` (element order), ``ndim_`` (2 or 3),
    ``crs_`` (WKT or None), ``seed_`` and ``fit_report_`` (what the fit used).
    """

    #: Name of the predicted map and what it means.
    output_name: str = "score"
    output_meaning: str = "larger = more prospective"
    #: Rows scored at once by ``_score_table`` (bounds prediction memory).
    predict_rows: int = 65_536
    #: Cells per dask chunk when an in-memory stack is scored in parallel.
    predict_chunk_cells: int = 262_144

    # --- subclass hooks -------------------------------------------------------------
    @abstractmethod
    def _fit_table(self, x: np.ndarray, y: np.ndarray | None, seed: int) -> None:
        """Learn from the cell table ``x`` (rows: cells, columns: elements) and labels ``y``."""

    @abstractmethod
    def _score_table(self, x: np.ndarray) -> np.ndarray:
        """Score every row of a cell table (larger = more prospective / anomalous)."""

    # --- shared machinery -----------------------------------------------------------
    def _seed(self, seed: int | None) -> int:
        s = getattr(self, "seed", 0) if seed is None else seed
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool):
            raise DataError(f"seed must be an integer; got {s!r}")
        return int(s)

    def _remember(self, elements: list[str], ndim: int, crs: Any, seed: int) -> None:
        """Record what a fit saw: element names, spatial dims, CRS (or None) and seed."""
        self.elements_ = list(elements)
        self.ndim_ = int(ndim)
        self.crs_ = None if crs is None else crs.to_wkt()
        self.seed_ = seed

    def _check_fitted(self) -> None:
        if not hasattr(self, "elements_"):
            raise ModelCardError(f"{type(self).__name__} is not fitted; call fit(stack, ...) first")

    def _predict_block(self, block: np.ndarray, table_fn: Any = None) -> np.ndarray:
        """Score one chunk laid out (..., element) in row batches; NaN where any is NaN.

        Rows go to ``table_fn`` (default ``_score_table``) ``predict_rows`` at a time, so a
        model's own temporaries (an SVM's kernel rows, a forest's per-tree outputs) stay
        bounded whatever the chunk size.
        """
        fn = self._score_table if table_fn is None else table_fn
        shape = block.shape[:-1]
        x = np.asarray(block, dtype="float64").reshape(-1, block.shape[-1])
        ok = np.isfinite(x).all(axis=1)
        out = np.full(x.shape[0], np.nan)
        rows = np.flatnonzero(ok)
        step = max(int(self.predict_rows), 1)
        for a in range(0, rows.size, step):
            r = rows[a : a + step]
            out[r] = fn(x[r])
        return out.reshape(shape)

    def score_cells(self, x: np.ndarray) -> np.ndarray:
        """Score the rows of a cell table, in row batches spread over threads.

        Parameters
        ----------
        x : ndarray, shape (n_cells, n_elements)
            Cells in the fitted element order (e.g. the held-out cells of a fold).

        Returns
        -------
        ndarray of float64, shape (n_cells,)
            Scores; NaN where any element is NaN.
        """
        self._check_fitted()
        x = np.asarray(x, dtype="float64")
        if x.ndim != 2 or x.shape[1] != len(self.elements_):
            raise DataError(
                f"{type(self).__name__}.score_cells needs an (n, "
                f"{len(self.elements_)}) table of {self.elements_}; got {x.shape}"
            )
        step = max(int(self.predict_chunk_cells), 1)
        if x.shape[0] <= step:
            return self._predict_block(x)
        parts = [x[a : a + step] for a in range(0, x.shape[0], step)]
        with ThreadPoolExecutor() as pool:
            return np.concatenate(list(pool.map(self._predict_block, parts)))

    def predict(self, stack: xr.DataArray) -> xr.DataArray:
        """Score every cell of a stack, lazily over its dask chunks.

        Parameters
        ----------
        stack : xarray.DataArray
            (``element``, y, x) or (``element``, z, y, x) holding the fitted elements
            (reordered by name when the order differs).

        Returns
        -------
        xarray.DataArray
            float64 map on the stack's grid and CRS, named after the model's output;
            NaN where any element is NaN (``attrs["nan_reason"]``).
        """
        self._check_fitted()
        spatial = check_stack(stack, f"{type(self).__name__}.predict")
        names = element_names(stack)
        if names != self.elements_:
            missing = [e for e in self.elements_ if e not in names]
            if missing or ELEMENT_DIM not in stack.coords:
                msg = (
                    f"{type(self).__name__} was fitted on elements {self.elements_}; the stack "
                    f"holds {names} (missing {missing})"
                )
                raise ModelCardError(msg)
            stack = stack.sel({ELEMENT_DIM: self.elements_})
        return self._predict_map(
            stack, spatial, self._score_table, self.output_name, self.output_meaning
        )

    def _predict_map(
        self, stack: xr.DataArray, spatial: tuple[str, ...], table_fn: Any, name: str, meaning: str
    ) -> xr.DataArray:
        """Apply ``table_fn`` to every valid cell, chunk by chunk; eager in, eager out.

        A dask stack stays lazy (one task per chunk). An in-memory stack larger than
        ``predict_chunk_cells`` is cut into row chunks scored in parallel by dask's threads
        (scikit-learn's predictions release the GIL) and computed before returning.
        """
        eager = stack.chunks is None
        n_cells = int(np.prod([stack.sizes[d] for d in spatial]))
        if not eager:
            stack = stack.chunk({ELEMENT_DIM: -1})
        elif n_cells > int(self.predict_chunk_cells):
            inner = int(np.prod([stack.sizes[d] for d in spatial[1:]]))
            lead = max(1, int(self.predict_chunk_cells) // max(inner, 1))
            stack = stack.chunk({ELEMENT_DIM: -1, spatial[0]: lead})
        out = xr.apply_ufunc(
            self._predict_block,
            stack,
            input_core_dims=[[ELEMENT_DIM]],
            kwargs={"table_fn": table_fn},
            dask="parallelized",
            output_dtypes=["float64"],
            keep_attrs=False,
        )
        if eager and out.chunks is not None:
            out = out.compute()
        out = out.transpose(*spatial)
        out.name = name
        out.attrs = {
            "model": type(self).__name__,
            "meaning": meaning,
            "elements": list(self.elements_),
            "nan_reason": (
                f"NaN where any of {self.elements_} is NaN (outside the study area or without data)"
            ),
        }
        crs = get_crs(stack)
        return write_crs(out, crs) if crs is not None else out


class AnomalyDetector(BaselineModel):
    """Unsupervised detector fitted on "normal" cells; larger score = more anomalous."""

    output_name = "anomaly"
    output_meaning = "larger = more anomalous"

    def fit(
        self,
        stack: xr.DataArray | xr.Dataset,
        labels: xr.Dataset | None = None,
        *,
        normal: xr.DataArray | np.ndarray | None = None,
        negatives: Any = None,
        elements: Sequence[str] | None = None,
        seed: int | None = None,
    ) -> AnomalyDetector:
        """Fit on the normal cells of a stack, or on the samples of a point table.

        Normal cells are every valid cell (all elements finite), restricted to ``normal``
        when given, minus the cells within ``self.buffer`` of the ``labels`` points when
        given (known deposits kept out of "normal"). At most ``self.max_cells`` of them
        are drawn at random (``seed``). Computes lazy input (fitting is global). A sample
        table (Dataset along ``sample``) is fitted the same way, one row per sample.

        Parameters
        ----------
        stack : xarray.DataArray or Dataset
            (``element``, y, x) or (``element``, z, y, x); or samples along ``sample``.
        labels : point Dataset, optional
            Known deposits to keep out of the normal cells (for samples: those within
            ``self.buffer``, which must then be set).
        normal : bool DataArray or array, optional
            Cells allowed as normal (on the stack's grid), or one flag per sample.
        negatives : None
            Not used by unsupervised detectors (an error when given).
        elements : list of str, optional
            Samples only: the variables, in order (default every numeric one).
        seed : int, optional
            Overrides the estimator's ``seed`` for this fit.

        Returns
        -------
        self
        """
        if negatives is not None:
            raise DataError(
                f"{type(self).__name__} is unsupervised: negatives= is not used; "
                "restrict the training cells with normal= instead"
            )
        if isinstance(stack, xr.Dataset) and SAMPLE_DIM in stack.dims:
            return self._fit_samples(stack, labels, normal, elements, self._seed(seed))
        if elements is not None:
            raise DataError("elements= selects sample variables; a stack has its element axis")
        what = f"{type(self).__name__}.fit"
        stack = cast(xr.DataArray, stack)
        spatial = check_stack(stack, what)
        seed = self._seed(seed)
        x, valid = cell_table(stack, spatial)
        use = valid.copy()
        report: dict[str, Any] = {"valid_cells": int(valid.sum())}
        if normal is not None:
            use &= grid_mask(normal, stack, spatial, "normal")
            report["normal_mask_cells"] = int(use.sum())
        if labels is not None:
            buffer = self.buffer if self.buffer is not None else default_buffer(stack)
            near, outside = _label_cells(labels, stack, buffer)
            before = int(use.sum())
            use[near] = False
            report.update(
                buffer=float(buffer),
                excluded_near_labels=before - int(use.sum()),
                labels_outside_grid=outside,
            )
        idx = np.flatnonzero(use)
        if idx.size < 2:
            raise DataError(
                f"{what}: only {idx.size} normal cells with every element finite; "
                "check the stack and the normal mask"
            )
        if self.max_cells is not None and idx.size > int(self.max_cells):
            idx = np.sort(
                np.random.default_rng(seed).choice(idx, int(self.max_cells), replace=False)
            )
        report["train_cells"] = int(idx.size)
        self._remember(element_names(stack), len(spatial), get_crs(stack), seed)
        self._fit_table(x[idx], None, seed)
        self.train_index_ = idx
        self.fit_report_ = report
        log.info("%s fitted on %d normal cells", type(self).__name__, idx.size)
        return self

    def _fit_samples(
        self,
        samples: xr.Dataset,
        labels: Any,
        normal: Any,
        elements: Sequence[str] | None,
        seed: int,
    ) -> AnomalyDetector:
        """Fit on the samples of a point table (see :meth:`fit`)."""
        what = f"{type(self).__name__}.fit"
        names, x = sample_table(samples, None, elements)
        use = np.isfinite(x).all(axis=1)
        report: dict[str, Any] = {"valid_samples": int(use.sum()), "n_samples": len(x)}
        if normal is not None:
            flags = np.asarray(getattr(normal, "values", normal), dtype=bool).ravel()
            if flags.shape != use.shape:
                raise DataError(f"{what}: normal= has {flags.size} flags for {use.size} samples")
            use &= flags
        if labels is not None:
            if self.buffer is None:
                raise DataError(
                    f"{what}: keeping labels out of samples needs buffer= (CRS units) on "
                    f"{type(self).__name__}"
                )
            from scipy.spatial import cKDTree  # heavy: loaded when samples are fitted (lazy)

            xy = sample_coords(samples)
            dep = as_points(labels)
            tree = cKDTree(np.column_stack([dep["x"].values, dep["y"].values]))
            d, _ = tree.query(np.column_stack([xy["x"], xy["y"]]))
            near = d <= float(self.buffer)
            report["excluded_near_labels"] = int((use & near).sum())
            use &= ~near
        idx = np.flatnonzero(use)
        if idx.size < 2:
            raise DataError(f"{what}: only {idx.size} normal samples with every element finite")
        if self.max_cells is not None and idx.size > int(self.max_cells):
            idx = np.sort(
                np.random.default_rng(seed).choice(idx, int(self.max_cells), replace=False)
            )
        report["train_samples"] = int(idx.size)
        self.elements_ = names
        self.ndim_ = 0
        crs = get_crs(samples)
        self.crs_ = None if crs is None else crs.to_wkt()
        self.seed_ = seed
        self._fit_table(x[idx], None, seed)
        self.train_index_ = idx
        self.fit_report_ = report
        return self

    def predict(self, stack: xr.DataArray | xr.Dataset) -> xr.DataArray:
        """Score every cell of a stack (see :meth:`BaselineModel.predict`) or every sample.

        Parameters
        ----------
        stack : xarray.DataArray or Dataset
            A stack, or samples along ``sample`` holding the fitted elements.

        Returns
        -------
        xarray.DataArray
            The map, or one score per sample (NaN where an element is missing).
        """
        if isinstance(stack, xr.Dataset) and SAMPLE_DIM in stack.dims:
            self._check_fitted()
            names, x = sample_table(stack, len(self.elements_), self.elements_)
            out = xr.DataArray(
                self._predict_block(x),
                dims=SAMPLE_DIM,
                coords=stack[names[0]].coords,
                name=self.output_name,
            )
            out.attrs = {"model": type(self).__name__, "meaning": self.output_meaning}
            return out
        return super().predict(cast(xr.DataArray, stack))


class SupervisedModel(BaselineModel):
    """Supervised model fitted on labelled cells; larger score = more prospective."""

    output_name = "prospectivity"
    output_meaning = "larger = more prospective"
    #: "negatives" (drawn away from deposits) or "background" (MaxEnt: any valid cell).
    _sampling = "negatives"

    def _set_sampling(
        self,
        class_weight: str | dict | None,
        n_negatives: int | None,
        buffer: float | None,
        positive_buffer: float,
        seed: int,
    ) -> None:
        """Store the options every classifier shares (class weights, labelled cells, seed)."""
        # set by name: models without some of these (MaxEnt, WofE) define them as read-only
        # properties, so the base class does not declare them as attributes
        shared = {
            "class_weight": class_weight,
            "n_negatives": n_negatives,
            "buffer": buffer,
            "positive_buffer": positive_buffer,
            "seed": seed,
        }
        for name, value in shared.items():
            setattr(self, name, value)

    def _n_negatives(self, n_pos: int) -> int:
        n = getattr(self, "n_negatives", None)
        return max(10 * n_pos, 200) if n is None else int(n)

    def fit(
        self,
        stack: xr.DataArray,
        labels: xr.Dataset | xr.DataArray | None = None,
        *,
        normal: xr.DataArray | np.ndarray | None = None,
        negatives: xr.Dataset | None = None,
        seed: int | None = None,
    ) -> SupervisedModel:
        """Fit on positive cells (known deposits) against negative or background cells.

        Positives are the cells holding a ``labels`` point, widened to every cell within
        ``self.positive_buffer`` of one, or the True cells of a boolean label map.
        Negatives are ``negatives`` points when given, else ``self.n_negatives`` cells drawn
        with :func:`xprospect.points.sample_negatives` farther than ``self.buffer``
        from every positive (MaxEnt instead draws background cells anywhere). ``normal``
        restricts where negatives or background are drawn. Computes lazy input.

        Parameters
        ----------
        stack : xarray.DataArray
            (``element``, y, x) or (``element``, z, y, x).
        labels : point Dataset or bool DataArray
            Known deposits (required).
        normal : bool DataArray or array, optional
            Cells from which negatives / background may be drawn.
        negatives : point Dataset, optional
            Explicit negatives (or background points for MaxEnt).
        seed : int, optional
            Overrides the estimator's ``seed`` for this fit.

        Returns
        -------
        self
        """
        what = f"{type(self).__name__}.fit"
        if labels is None:
            raise DataError(f"{what} needs labels= (known deposit points or a boolean map)")
        spatial = check_stack(stack, what)
        seed = self._seed(seed)
        x, valid = cell_table(stack, spatial)
        report: dict[str, Any] = {"valid_cells": int(valid.sum())}
        if isinstance(labels, xr.DataArray):
            pos = np.flatnonzero(grid_mask(labels, stack, spatial, "labels"))
            report["labels_outside_grid"] = 0
            label_pts = cells_to_points(pos, stack, "L")
        else:
            pos, outside = _label_cells(labels, stack, self.positive_buffer)
            report["labels_outside_grid"] = outside
            label_pts = labels
        n_invalid = int((~valid[pos]).sum())
        pos = pos[valid[pos]]
        report.update(positive_cells=int(pos.size), positives_on_nan_cells=n_invalid)
        if pos.size < 2:
            raise DataError(
                f"{what}: only {pos.size} positive cells with every element finite "
                f"({n_invalid} fell on NaN cells); need at least 2"
            )
        allowed = valid.copy()
        if normal is not None:
            allowed &= grid_mask(normal, stack, spatial, "normal")
        if negatives is not None:
            neg, out_n = _label_cells(negatives, stack, 0.0)
            neg = neg[allowed[neg]]
            report["negatives_outside_grid"] = out_n
            report["negatives_source"] = "given"
        elif self._sampling == "background":
            cand = np.flatnonzero(allowed)
            n = min(self._n_negatives(pos.size), cand.size)
            neg = np.sort(np.random.default_rng(seed).choice(cand, n, replace=False))
            report["negatives_source"] = "random background cells"
        else:
            buffer = self.buffer if self.buffer is not None else default_buffer(stack)
            pts = cells_to_points(pos, stack, "L") if self.positive_buffer else label_pts
            shape = tuple(stack.sizes[d] for d in spatial)
            negs = sample_negatives(
                stack,
                pts,
                self._n_negatives(pos.size),
                buffer=buffer,
                seed=seed,
                mask=allowed.reshape(shape),
            )
            neg, _ = _label_cells(negs, stack, 0.0)
            report.update(negatives_source="sample_negatives", buffer=float(buffer))
        if neg.size < 1:
            raise DataError(f"{what}: no negative/background cells with every element finite")
        report["negative_cells"] = int(neg.size)
        self._remember(element_names(stack), len(spatial), get_crs(stack), seed)
        if self._sampling == "background":
            # MaxEnt: presences plus a background sample of the whole area.
            rows = np.concatenate([pos, neg])
            y = np.concatenate([np.ones(pos.size), np.zeros(neg.size)]).astype("int64")
        else:
            neg = np.setdiff1d(neg, pos)
            rows = np.concatenate([pos, neg])
            y = np.concatenate([np.ones(pos.size), np.zeros(neg.size)]).astype("int64")
        self._fit_table(x[rows], y, seed)
        self.positive_index_ = pos
        self.negative_index_ = neg
        self.fit_report_ = report
        log.info(
            "%s fitted on %d positive and %d %s cells",
            type(self).__name__,
            pos.size,
            neg.size,
            report["negatives_source"],
        )
        return self

    def fit_cells(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        elements: Sequence[str],
        ndim: int = 0,
        seed: int | None = None,
    ) -> SupervisedModel:
        """Fit on a labelled table of feature rows, the twin of :meth:`score_cells`.

        For callers that build the rows themselves, e.g. a block-model harness whose
        training rows are interpolated without the row's own drillhole
        (:func:`xprospect.benchmark3d`); :meth:`fit` draws its rows from one stack.

        Parameters
        ----------
        x : ndarray, shape (n, n_elements)
            Feature rows, columns in ``elements`` order, every value finite.
        y : ndarray, shape (n,)
            Labels, boolean or 0/1 (1: deposit / inside the mineralisation); both classes
            present (MaxEnt: presences against background rows).
        elements : list of str
            Names of the columns; a stack scored later must hold them.
        ndim : int
            Spatial dimensions of the stacks the rows came from (0: not from a grid).
        seed : int, optional
            Overrides the estimator's ``seed`` for this fit.

        Returns
        -------
        self
        """
        what = f"{type(self).__name__}.fit_cells"
        names = [str(e) for e in elements]
        xa = np.asarray(x, dtype="float64")
        ya = np.asarray(y)
        if xa.ndim != 2 or xa.shape[1] != len(names):
            raise DataError(f"{what} needs an (n, {len(names)}) table of {names}; got {xa.shape}")
        if ya.shape != (xa.shape[0],):
            raise DataError(f"{what}: y has shape {ya.shape}; need one label per row ({len(xa)})")
        if ya.dtype != bool and not np.isin(ya, (0, 1)).all():
            raise DataError(f"{what}: labels must be boolean or 0/1; got values such as {ya[:3]!r}")
        bad = ~np.isfinite(xa).all(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{what}: {int(bad.sum())} rows hold NaN or inf, e.g. row {i}")
        yi = ya.astype("int64")
        n_pos = int(yi.sum())
        if n_pos < 2 or n_pos == yi.size:
            raise DataError(
                f"{what}: {n_pos} positive and {yi.size - n_pos} negative rows; need at least "
                "2 positives and 1 negative"
            )
        seed = self._seed(seed)
        self._remember(names, ndim, None, seed)
        self._fit_table(xa, yi, seed)
        self.fit_report_ = {"positive_cells": n_pos, "negative_cells": int(yi.size - n_pos)}
        log.info(
            "%s fitted on a table of %d positive and %d negative rows",
            type(self).__name__,
            n_pos,
            yi.size - n_pos,
        )
        return self
