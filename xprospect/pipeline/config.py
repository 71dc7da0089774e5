"""The pipeline's configuration file: schema, validation with line numbers, commented example.

One schema (:data:`SCHEMA`) is the single home of every key: its type, default, allowed
values and the help text that both the validator's errors and ``xprospect init``'s commented
example use. A configuration is a TOML file (read with :mod:`tomllib`); an error names the
file, the line of the offending key (found by scanning the TOML text for it) and what was
expected.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xprospect.exceptions import DataError

__all__ = ["SCHEMA", "ConfigError", "Field", "example_config", "load_config", "validate_config"]


class ConfigError(DataError):
    """A pipeline configuration that does not follow the schema (names file and line)."""


@dataclasses.dataclass(frozen=True)
class Field:
    """One key of the configuration.

    Attributes
    ----------
    kind : str
        ``"str"``, ``"int"``, ``"float"``, ``"bool"``, ``"list[str]"``, ``"list[int]"`` or
        ``"list[float]"``.
    default : Any
        Value when absent (None: not set).
    help : str
        One line for the commented example and the errors.
    required : bool
        The key must be given.
    choices : tuple, optional
        Allowed values.
    example : Any
        Value shown in the example configuration (default ``default``).
    positive : bool
        Numbers (or every item of a list) must be > 0.
    suggest : bool
        Show ``example`` as a set value in the example configuration (else an optional key
        without a default is shown commented out).
    """

    kind: str
    default: Any
    help: str
    required: bool = False
    choices: tuple[Any, ...] | None = None
    example: Any = None
    positive: bool = False
    suggest: bool = False


_SECTIONS: dict[str, str] = {
    "output": "Where every stage writes (one folder, with manifest.json), and the seed.",
    "samples": "The survey: a CSV, Parquet, GeoPackage or Shapefile of samples.",
    "deposits": "Known deposits (CSV, Parquet, GeoPackage, Shapefile, GeoJSON).",
    "grid": "Gridding the samples onto a regular grid in the target CRS (metres).",
    "transform": "Transforms of the element maps, applied in order.",
    "select": "Choosing the model's input elements by AUC / Z_AUC against the deposits.",
    "train": "Training a window classifier on windows around the deposits.",
    "score": "Scoring the whole grid with the trained model (to zarr and a COG GeoTIFF).",
    "evaluate": "Evaluation against the deposits (metrics.json and evaluation.png).",
    "targets": "Target regions at the top N % of the area (GeoPackage, GeoJSON, CSV).",
}

SCHEMA: dict[str, dict[str, Field]] = {
    "output": {
        "folder": Field("str", "xprospect-out", "output folder, relative to this file"),
        "seed": Field("int", 0, "seed of every random step (negatives, splits, weights)"),
        "cog": Field("bool", True, "write the map as a Cloud Optimized GeoTIFF (overviews)"),
    },
    "samples": {
        "path": Field(
            "str", None, "survey file, relative to this file", True, example="samples.csv"
        ),
        "x": Field("str", "x", "easting or longitude column", example="X"),
        "y": Field("str", "y", "northing or latitude column", example="Y"),
        "crs": Field("str", None, "CRS of the coordinates", True, example="EPSG:4326"),
        "to_crs": Field(
            "str",
            None,
            "projected CRS (metres) to grid in; unset: keep crs",
            example="EPSG:32750",
            suggest=True,
        ),
        "elements": Field(
            "list[str]",
            None,
            "element columns to grid; unset: every analyte",
            example=["Au_ppb", "As_ppm", "Cu_ppm"],
        ),
        "id_column": Field("str", None, "sample id column", example="SAMPLEID"),
        "duplicates": Field(
            "str",
            "mean",
            "co-located samples (drop: exact duplicates only)",
            choices=("mean", "drop", "keep", "error"),
        ),
        "bdl": Field(
            "str",
            "half",
            "below-detection values: half the detection limit, the limit (dl) or missing (nan)",
            choices=("half", "dl", "nan"),
        ),
    },
    "deposits": {
        "path": Field(
            "str", None, "deposits file, relative to this file", True, example="deposits.csv"
        ),
        "x": Field("str", "x", "easting or longitude column", example="X"),
        "y": Field("str", "y", "northing or latitude column", example="Y"),
        "crs": Field(
            "str",
            None,
            "CRS of a table's coordinates; unset: a vector file's own, else the samples' crs",
            example="EPSG:4326",
        ),
        "train_query": Field(
            "str",
            None,
            "pandas query of the deposits that train; unset: all",
            example="Y > -33.4",
        ),
        "test_query": Field(
            "str",
            None,
            "pandas query of the deposits that evaluate (a spatial hold-out); unset: the "
            "training ones, which measures fit, not prediction",
            example="Y <= -33.4",
        ),
    },
    "grid": {
        "resolution": Field(
            "float", None, "cell size in metres", True, example=250.0, positive=True
        ),
        "method": Field("str", "idw", "gridder", choices=("idw", "kriging")),
        "k": Field("int", 12, "neighbours per cell", positive=True),
        "power": Field("float", 2.0, "IDW power", positive=True),
        "variogram": Field(
            "str",
            "spherical",
            "kriging variogram",
            choices=("spherical", "exponential", "gaussian"),
        ),
        "pad": Field(
            "float", None, "margin around the samples in metres; unset: two cells", example=1000.0
        ),
        "chunks": Field("int", 256, "dask chunk edge in cells", positive=True),
    },
    "transform": {
        "methods": Field(
            "list[str]", ["clr", "zscore"], "transforms in order (clr, ilr, log10, zscore...)"
        ),
    },
    "select": {
        "alpha": Field("float", 0.01, "significance level of Z_AUC", positive=True),
        "min_elements": Field("int", 2, "at least this many (best Z_AUC)", positive=True),
        "max_elements": Field("int", 8, "at most this many", positive=True),
        "elements": Field(
            "list[str]", None, "use these elements instead of choosing", example=["Au", "As"]
        ),
    },
    "train": {
        "model": Field("str", "small_cnn", "registered model name (small_cnn, resnet18...)"),
        "window_m": Field(
            "float", 6000.0, "model window in metres (cells = window_m / resolution)", positive=True
        ),
        "recipe": Field("str", "adam", "training recipe", choices=("adam", "resnet-sgd")),
        "epochs": Field("int", 20, "epochs (the best on validation is kept)", positive=True),
        "validation": Field("float", 0.25, "share of windows in the spatial validation split"),
        "negatives_per_positive": Field("int", 15, "barren windows per deposit", positive=True),
        "n_per_positive": Field("int", 8, "jittered windows per deposit", positive=True),
        "batch_size": Field(
            "int", None, "training batch; unset: the recipe's", positive=True, example=64
        ),
        "device": Field("str", "auto", "auto, cpu or cuda"),
    },
    "score": {
        "batch_size": Field("int", 64, "windows or tiles per batch", positive=True),
        "stride": Field("int", 1, "stride of a window model's lattice (cells)", positive=True),
        "device": Field("str", "auto", "auto, cpu or cuda"),
    },
    "evaluate": {
        "top_percent": Field(
            "float", 10.0, "share of the area called prospective (percent)", positive=True
        ),
        "blocks": Field("list[int]", [12, 12], "block grid of the block evaluation", positive=True),
    },
    "targets": {
        "top_percent": Field(
            "list[float]",
            [10.0, 2.0],
            "target levels as shares of the area (percent)",
            positive=True,
        ),
        "min_cells": Field("int", 1, "smallest target region (cells)", positive=True),
    },
}


def _line_of(text: str, section: str, key: str | None = None) -> int | None:
    """1-based line of ``[section]`` (or of ``key =`` inside it) in TOML text; None if absent."""
    lines = text.splitlines()
    head = re.compile(r"^\s*\[\s*" + re.escape(section) + r"\s*\]\s*(#.*)?$")
    any_head = re.compile(r"^\s*\[")
    start = next((i for i, ln in enumerate(lines) if head.match(ln)), None)
    if start is None:
        return None
    if key is None:
        return start + 1
    pat = re.compile(r"^\s*\"?" + re.escape(key) + r"\"?\s*=")
    for i in range(start + 1, len(lines)):
        if any_head.match(lines[i]):
            break
        if pat.match(lines[i]):
            return i + 1
    return start + 1


def _kind_ok(kind: str, value: Any) -> bool:
    def scalar(k: str, v: Any) -> bool:
        if k == "bool":
            return isinstance(v, bool)
        if isinstance(v, bool):
            return False
        if k == "str":
            return isinstance(v, str)
        if k == "int":
            return isinstance(v, int)
        if k == "float":
            return isinstance(v, int | float)
        raise AssertionError(k)

    if kind.startswith("list["):
        inner = kind[5:-1]
        return isinstance(value, list) and all(scalar(inner, v) for v in value)
    return scalar(kind, value)


def validate_config(
    raw: Mapping[str, Any],
    *,
    text: str = "",
    source: str = "<config>",
    schema: Mapping[str, Mapping[str, Field]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Check a parsed configuration against :data:`SCHEMA` and fill in the defaults.

    Parameters
    ----------
    raw : mapping
        The parsed TOML.
    text : str
        The TOML text (to find line numbers for the errors).
    source : str
        The file's name, in the errors.
    schema : mapping, optional
        ``{section: {key: Field}}`` (default :data:`SCHEMA`, the pipeline's); the checks
        across keys of the pipeline's schema apply only to it.

    Returns
    -------
    dict
        ``{section: {key: value}}`` for every section and key of the schema.

    Raises
    ------
    ConfigError
        Naming the file, the line, the section and key, and what was expected; every
        problem is listed, separated by "; ".

    Examples
    --------
    >>> cfg = validate_config({"samples": {"path": "s.csv", "crs": "EPSG:32750"},
    ...                        "deposits": {"path": "d.csv"}, "grid": {"resolution": 500}})
    >>> cfg["grid"]["method"], cfg["train"]["epochs"]
    ('idw', 20)
    """
    pipeline = schema is None
    schema = SCHEMA if schema is None else schema
    problems: list[str] = []

    def where(section: str, key: str | None = None) -> str:
        line = _line_of(text, section, key) if text else None
        at = f"{source}, line {line}" if line else source
        name = f"[{section}] {key}" if key else f"[{section}]"
        return f"{at}: {name}"

    out: dict[str, dict[str, Any]] = {}
    for section in raw:
        if section not in schema:
            problems.append(f"{where(section)}: unknown section; known: {', '.join(schema)}")
        elif not isinstance(raw[section], Mapping):
            problems.append(f"{where(section)}: expected a table [{section}]")
    for section, fields in schema.items():
        given = raw.get(section, {})
        given = given if isinstance(given, Mapping) else {}
        values: dict[str, Any] = {}
        for key in given:
            if key not in fields:
                problems.append(f"{where(section, key)}: unknown key; known: {', '.join(fields)}")
        for key, f in fields.items():
            if key not in given:
                if f.required:
                    problems.append(f"{where(section)}: missing required key {key!r} ({f.help})")
                values[key] = list(f.default) if isinstance(f.default, list) else f.default
                continue
            v = given[key]
            if not _kind_ok(f.kind, v):
                problems.append(f"{where(section, key)}: expected {f.kind} ({f.help}); got {v!r}")
                continue
            if f.choices is not None and v not in f.choices:
                problems.append(
                    f"{where(section, key)}: expected one of {list(f.choices)}; got {v!r}"
                )
                continue
            items = v if isinstance(v, list) else [v]
            if f.positive and not all(x > 0 for x in items):
                problems.append(f"{where(section, key)}: expected > 0; got {v!r}")
                continue
            values[key] = float(v) if f.kind == "float" else v
        out[section] = values
    if pipeline and not problems:
        tr = out["train"]
        if not 0 <= tr["validation"] < 1:
            problems.append(
                f"{where('train', 'validation')}: expected a share in [0, 1); "
                f"got {tr['validation']!r}"
            )
        if (
            any(p > 100 for p in out["targets"]["top_percent"])
            or out["evaluate"]["top_percent"] > 100
        ):
            problems.append(f"{where('targets')}: top_percent values must be at most 100")
    if problems:
        raise ConfigError("; ".join(problems))
    return out


def load_config(
    path: str | Path, *, schema: Mapping[str, Mapping[str, Field]] | None = None
) -> dict[str, dict[str, Any]]:
    """Read and validate a pipeline TOML file.

    Parameters
    ----------
    path : str or Path
        The configuration.
    schema : mapping, optional
        See :func:`validate_config` (default the pipeline's).

    Returns
    -------
    dict
        See :func:`validate_config`; ``["output"]["base"]`` holds the file's folder, against
        which relative paths are resolved.

    Raises
    ------
    ConfigError
        For a missing file, bad TOML (with its line) or a schema violation.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"cannot read {path}: no such file") from None
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror or err}") from err
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    cfg = validate_config(raw, text=text, source=str(path), schema=schema)
    cfg.setdefault("output", {})["base"] = str(path.resolve().parent)
    return cfg


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


def example_config() -> str:
    """Return a commented example configuration (what ``xprospect init`` writes).

    Every key of :data:`SCHEMA` appears with its help; unset optional keys are commented out.

    Returns
    -------
    str
        TOML text that :func:`validate_config` accepts.

    Examples
    --------
    >>> text = example_config()
    >>> cfg = validate_config(tomllib.loads(text))
    >>> cfg["samples"]["path"], cfg["targets"]["top_percent"]
    ('samples.csv', [10.0, 2.0])
    """
    out = [
        "# xprospect pipeline: from a survey table and a deposit list to a prospectivity map.",
        "# Edit the paths, columns and CRS below, then run:  xprospect run pipeline.toml",
        "# A rerun redoes only the stages whose inputs or settings changed (see manifest.json).",
        "# Stages: grid -> transform -> select -> train -> score -> evaluate, targets.",
        "",
    ]
    for section, fields in SCHEMA.items():
        out += [f"# {_SECTIONS[section]}", f"[{section}]"]
        for key, f in fields.items():
            value = f.example if f.example is not None else f.default
            extra = f" (one of: {', '.join(map(str, f.choices))})" if f.choices else ""
            req = "required; " if f.required else ""
            out.append(f"# {req}{f.help}{extra}")
            unset = f.default is None and not (f.required or f.suggest)
            out.append(f"{'# ' if unset else ''}{key} = {_toml_value(value)}")
        out.append("")
    return "\n".join(out)
