"""The metadata of a zarr store written with zarr's API, as ``xarray.Dataset.to_zarr`` writes it.

:func:`xprospect.to_zarr` writes the chunks of the lazy variables itself
(:mod:`xprospect.io._resume`), so it only needs xarray for the metadata: the groups' and
arrays' ``zarr.json``, the coordinates and other in-memory variables, consolidated. Through
``Dataset.to_zarr(compute=False)`` that cost the calling thread about 1 s of wall time on a
16-map grid whatever its size (0.25 s of CPU): one trip through zarr's event loop for each
array's creation and another for its attrs, each waiting on a file write in turn, and a
``dask.array.store`` graph over the lazy variables (dropped unused) plus the Delayed that
closes it.

:func:`write_metadata` makes the same documents with xarray's own encoders (CF encoding,
``coordinates`` attrs, ``_FillValue``, fill values, dimension names, chunk encodings: the
steps of ``ZarrStore.store`` and ``set_variables``) and writes them with zarr's API in
three trips: the root group (its attrs carry the ledger: a store stopped after this reads as
started, never complete), every array's metadata and in-memory data at once, then the root
group again with the consolidated metadata and the final attrs. The documents are the ones
xarray writes (``tests/test_store_meta.py`` compares every ``zarr.json``), so ``xr.open_zarr``
and :func:`xprospect.open_zarr` open the store identically.

What it does not cover exactly is left to xarray (:func:`direct`): a store that is not a
local folder, names that are not non-empty strings, empty variables, in-memory variables
that are not numbers, booleans or dates (strings and objects go through xarray's coders).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Mapping
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
import zarr
from xarray import conventions
from xarray.backends.zarr import (
    FillValueCoder,
    encode_zarr_attr_value,
    encode_zarr_variable,
    extract_zarr_variable_encoding,
)
from zarr.core.group import ConsolidatedMetadata, GroupMetadata
from zarr.core.sync import sync
from zarr.storage import LocalStore

__all__ = ["direct", "write_metadata"]

# the encoding keys xarray hands to ``zarr.Group.create`` that ``create_array`` takes as such
_ARRAY_KEYS = ("chunks", "shards", "filters", "compressors", "serializer", "chunk_key_encoding")
# in-memory data kinds written here (strings and objects need xarray's coders)
_PLAIN_KINDS = "biufcmM"


def direct(ds: xr.Dataset, path: str) -> bool:
    """Whether :func:`write_metadata` writes exactly what xarray would for ``ds`` at ``path``.

    Parameters
    ----------
    ds : xarray.Dataset
        The Dataset to write (its lazy variables' data are not written here).
    path : str
        Folder of the store (it may exist: ``mode="w"`` replaces a folder).

    Returns
    -------
    bool
    """
    if os.path.exists(path) and not os.path.isdir(path):
        return False
    for name, var in ds.variables.items():
        if not isinstance(name, str) or not name or "/" in name or var.size == 0:
            return False
        if not _lazy(var) and var.dtype.kind not in _PLAIN_KINDS:
            return False
    return True


def _lazy(var: xr.Variable) -> bool:
    return isinstance(var.data, da.Array)


def _array_spec(name: str, var: xr.Variable) -> tuple[dict[str, Any], Any]:
    """Return the ``create_array`` arguments of one encoded variable and its data.

    The steps of xarray's ``ZarrStore.set_variables`` for a new array of zarr format 3
    (``use_zarr_fill_value_as_mask`` False, its default there).
    """
    attrs = var.attrs.copy()
    fill_value = var.encoding.pop("fill_value", None)
    if fill_value is None and var.dtype.kind == "f":
        fill_value = np.nan  # xarray's default for floats (zarr's is zero)
    if "_FillValue" in attrs:
        fv = attrs.pop("_FillValue")
        if fv is not None:
            attrs["_FillValue"] = FillValueCoder.encode(fv, var.dtype)
    if var.encoding.get("_FillValue", 0) is None:
        del var.encoding["_FillValue"]
    encoding = extract_zarr_variable_encoding(var, name=name, zarr_format=3)
    config = {c: encoding.pop(c) for c in ("write_empty_chunks", "order") if c in encoding}
    spec: dict[str, Any] = {k: encoding[k] for k in _ARRAY_KEYS if k in encoding}
    spec.update(
        name=name,
        shape=var.shape,
        dtype=var.dtype,
        fill_value=fill_value,
        attributes={k: encode_zarr_attr_value(v) for k, v in attrs.items()},
        dimension_names=var.dims,
        config=config,
    )
    return spec, None if _lazy(var) else np.asarray(var.values)


async def _create(
    store: LocalStore,
    specs: list[tuple[dict[str, Any], Any]],
    root: dict[str, Any],
    final: dict[str, Any],
) -> zarr.AsyncGroup:
    # the root first: a store stopped before the arrays exist reads as started (its ledger)
    group = await zarr.api.asynchronous.group(store=store, attributes=root, zarr_format=3)
    arrays = await asyncio.gather(
        *(zarr.api.asynchronous.create_array(store, zarr_format=3, **spec) for spec, _ in specs)
    )
    await asyncio.gather(
        *(
            a.setitem(Ellipsis, data)
            for a, (_, data) in zip(arrays, specs, strict=True)
            if data is not None
        )
    )
    meta = GroupMetadata(
        attributes=final,
        zarr_format=3,
        consolidated_metadata=ConsolidatedMetadata(
            metadata={spec["name"]: a.metadata for a, (spec, _) in zip(arrays, specs, strict=True)}
        ),
    )
    group = zarr.AsyncGroup(metadata=meta, store_path=group.store_path)
    await group._save_metadata()  # one write of the root's zarr.json, as consolidating ends
    return group


def write_metadata(
    ds: xr.Dataset, path: str, mode: str, final_attrs: Mapping[str, Any] | None = None
) -> zarr.Group:
    """Write ``ds``'s metadata and in-memory variables to a new zarr store at ``path``.

    Parameters
    ----------
    ds : xarray.Dataset
        Prepared for writing (zarr chunks and codecs in each variable's encoding); its lazy
        variables get their arrays, not their data.
    path : str
        Folder of the store; :func:`direct` must hold.
    mode : {"w-", "w"}
        ``"w"`` replaces an existing folder; ``"w-"`` expects none.
    final_attrs : dict, optional
        Root attrs that replace those of ``ds`` once the arrays exist (a ledger's state).

    Returns
    -------
    zarr.Group
        The root group, its consolidated metadata included.

    Raises
    ------
    FileExistsError
        When the folder exists and ``mode="w-"``.
    """
    if os.path.exists(path):
        if mode != "w":
            raise FileExistsError(path)
        shutil.rmtree(path)
    variables, attrs = conventions.encode_dataset_coordinates(ds)
    specs = [
        _array_spec(str(name), encode_zarr_variable(var, name=name, zarr_format=3))
        for name, var in variables.items()
    ]
    root = {k: encode_zarr_attr_value(v) for k, v in attrs.items()}
    final = {**root, **{k: encode_zarr_attr_value(v) for k, v in (final_attrs or {}).items()}}
    store = LocalStore(path)
    return zarr.Group(sync(_create(store, specs, root, final)))
