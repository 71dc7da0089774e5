"""The one JSON sanitiser: numpy scalars and arrays, tables and paths to JSON types.

Reports (ingest, composites, evaluation, training histories, checkpoints, the command line's
metrics) are written as JSON; :func:`jsonable` is the single place that decides how a numpy
or pandas value becomes a JSON value.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["dumps", "jsonable"]


def jsonable(obj: Any, *, nonfinite: str = "null", strict: bool = False) -> Any:
    """Copy ``obj`` into JSON types: dict, list, str, int, float, bool and None.

    Parameters
    ----------
    obj : any
        Mappings (keys become strings), lists and tuples, pandas DataFrames (a dict of
        column lists), numpy arrays (nested lists), numpy scalars, paths, and JSON types.
    nonfinite : {"null", "keep"}
        NaN and infinite floats become None (valid JSON), or are kept (Python's ``json``
        then writes ``NaN``/``Infinity``).
    strict : bool
        Raise on an object of any other type instead of passing it through unchanged.

    Returns
    -------
    any
        The JSON-able copy.

    Raises
    ------
    TypeError
        With ``strict``, naming the first value that has no JSON form.

    Examples
    --------
    >>> import numpy as np
    >>> jsonable({"auc": np.float32(0.5), "n": np.int64(3), "se": float("nan")})
    {'auc': 0.5, 'n': 3, 'se': None}
    """
    if nonfinite not in ("null", "keep"):
        raise ValueError(f"nonfinite must be 'null' or 'keep'; got {nonfinite!r}")

    def conv(o: Any) -> Any:
        if isinstance(o, Mapping):
            return {str(k): conv(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [conv(v) for v in o]
        if isinstance(o, pd.DataFrame):
            return {str(c): conv(o[c].tolist()) for c in o.columns}
        if isinstance(o, np.ndarray):
            return conv(o.tolist())
        if isinstance(o, (bool, np.bool_)):
            return bool(o)
        if isinstance(o, np.integer):
            return int(o)
        if isinstance(o, (float, np.floating)):
            f = float(o)
            return None if nonfinite == "null" and not math.isfinite(f) else f
        if isinstance(o, np.generic):
            return conv(o.item())
        if isinstance(o, os.PathLike):
            return os.fspath(o)
        if strict and not (o is None or isinstance(o, (str, int))):
            raise TypeError(f"{type(o).__name__} is not JSON-able")
        return o

    return conv(obj)


def dumps(obj: Any, *, nonfinite: str = "null", strict: bool = False, **kwargs: Any) -> str:
    """Return ``json.dumps(jsonable(obj))``; ``kwargs`` go to :func:`json.dumps`.

    Examples
    --------
    >>> import numpy as np
    >>> dumps({"n": np.int64(2)})
    '{"n": 2}'
    """
    return json.dumps(jsonable(obj, nonfinite=nonfinite, strict=strict), **kwargs)
