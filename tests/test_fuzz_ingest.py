"""Fuzz ``read_samples`` on generated CSV text against an independent oracle of its policies.

Each example is a survey table drawn cell by cell as *kinds* (a detected value, ``<DL``,
``-DL``, 0, a sentinel, a code of nines, a blank, an NA marker, a non-finite number, ``>x``),
rendered to CSV text in UTF-8 or Windows-1252. The oracle works from the kinds, never from
the text, and applies the documented policy (``read_samples`` Notes and
``xprospect.io.samples.SENTINEL_POLICY``); the reader must either raise an
:class:`~xprospect.exceptions.XProspectError` exactly when the oracle says the table is
refused, or return a Dataset whose every value equals the oracle's.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import xprospect as xp
from xprospect.exceptions import XProspectError

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies
given, settings = hypothesis.given, hypothesis.settings

COLUMNS = {"Au_ppb": "Au", "Cu_ppm": "Cu", "Fe2O3_pct": "Fe2O3"}
NA_TEXT = ["NA", "n/a", "NULL", "-", "nd", "None"]
NONFINITE = ["inf", "Infinity", "-inf", "1e400", "<inf"]
SITES = ["NA", "NULL", "None", "Jos\xe9", "007", "", "n/a", "ZA"]

# no filters: a filtered strategy can trip hypothesis's filter_too_much health check
# (it did once in a fresh CI run); 0.001 rounded to 4 places stays positive
small = st.floats(0.001, 50.0, allow_nan=False).map(lambda v: round(v, 4))
cell = st.one_of(
    st.tuples(st.just("num"), st.floats(0.01, 2000.0).map(lambda v: round(v, 3))),
    st.tuples(st.just("num"), st.sampled_from([9999.0, 99999.0])),
    st.tuples(st.just("lt"), small),
    st.tuples(st.just("neg"), small),
    st.tuples(st.just("neg"), st.floats(100.0, 5e4).map(lambda v: round(v, 1))),
    st.tuples(st.just("zero"), st.just(0.0)),
    st.tuples(st.just("gt"), st.floats(1.0, 5000.0).map(lambda v: round(v, 2))),
    st.tuples(st.just("sentinel"), st.just(9999.0)),
    st.tuples(st.just("nines"), st.sampled_from([99.0, 999.0, 99999.0])),
    st.tuples(st.just("blank"), st.just(0.0)),
    st.tuples(st.just("na"), st.sampled_from(range(len(NA_TEXT)))),
    st.tuples(st.just("nonfinite"), st.sampled_from(range(len(NONFINITE)))),
)
num_coord = st.tuples(st.just("num"), st.floats(0.0, 10_000.0).map(lambda v: round(v, 2)))
coord = st.one_of(
    num_coord,
    st.tuples(st.just("blank"), st.just(0.0)),
    st.tuples(st.just("nonfinite"), st.just(0.0)),
)


@st.composite
def tables(draw):
    n = draw(st.integers(1, 8))
    cols = draw(st.lists(st.sampled_from(sorted(COLUMNS)), min_size=1, max_size=3, unique=True))
    # rare coordinate trouble: most rows have plain coordinates
    rows = []
    for _ in range(n):
        e = draw(st.one_of(coord, num_coord, num_coord))
        nn = ("num", draw(st.floats(0.0, 10_000.0).map(lambda v: round(v, 2))))
        cells = {c: draw(cell) for c in cols}
        site = draw(st.sampled_from(SITES))
        rows.append((e, nn, cells, site))
    encoding = draw(st.sampled_from(["utf-8", "cp1252"]))
    policy = draw(st.sampled_from(["error", "drop"]))
    nonfinite = draw(st.sampled_from(["error", "missing"]))
    return cols, rows, encoding, policy, nonfinite


def _render(kind, v, i=0):
    if kind == "num":
        return repr(float(v))
    if kind == "lt":
        return f"<{v!r}"
    if kind == "neg":
        return f"-{v!r}"
    if kind == "zero":
        return "0"
    if kind == "gt":
        return f">{v!r}"
    if kind in ("sentinel", "nines"):
        return repr(-float(v))
    if kind == "blank":
        return ""
    if kind == "na":
        return NA_TEXT[int(v)]
    if kind == "nonfinite":
        return NONFINITE[int(v)]
    raise AssertionError(kind)


def _oracle_column(cells, nonfinite):
    """Values (bdl='half') of one column from its cells' kinds; None if all missing."""
    n = len(cells)
    kinds = [k for k, _ in cells]
    vals = [v for _, v in cells]
    if "nonfinite" in kinds and nonfinite == "error":
        raise ValueError("refused")
    # over-range: a positive all-nines number > 10 x the median of the other plain numbers
    plain = [v for k, v in cells if k == "num"]
    rest = [v for v in plain if v not in (9999.0, 99999.0)]
    med = float(np.median(rest)) if rest else None
    over = [
        k == "num" and v in (9999.0, 99999.0) and med is not None and v > 10 * med for k, v in cells
    ]
    detected = [v for (k, v), o in zip(cells, over, strict=True) if k == "num" and not o]
    top = max(detected) if detected else math.inf

    def nines(d):
        return d >= 99 and d == int(d) and set(str(int(d))) == {"9"}

    out = np.full(n, np.nan)
    dl = np.full(n, np.nan)
    state = [""] * n
    for i, (k, v) in enumerate(cells):
        if k == "num" and not over[i]:
            out[i], state[i] = v, "value"
        elif k == "gt":
            out[i], state[i] = v, "value"
        elif k == "lt":
            dl[i], state[i] = v, "bdl"
        elif k == "neg" and not (nines(v) or v > 10 * top):
            dl[i], state[i] = v, "bdl"
        elif k == "zero":
            state[i] = "zero"
        else:
            state[i] = "missing"
    if all(s == "missing" for s in state):
        return None
    positives = [out[i] for i in range(n) if state[i] == "value" and out[i] > 0]
    stated = [dl[i] for i in range(n) if state[i] == "bdl"]
    guess = min(positives) if positives else (min(stated) if stated else np.nan)
    for i in range(n):
        if state[i] == "zero":
            dl[i] = guess
        if state[i] in ("bdl", "zero"):
            out[i] = 0.5 * dl[i]
    del vals, kinds
    return out


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)
@given(tables())
def test_read_samples_matches_oracle(tmp_path_factory, table):
    cols, rows, encoding, policy, nonfinite = table
    lines = [",".join(["E", "N", *cols, "site"])]
    for e, nn, cells, site in rows:
        ex = {"num": repr(500_000.0 + e[1]), "blank": "", "nonfinite": "inf"}[e[0]]
        lines.append(
            ",".join([ex, repr(6_300_000.0 + nn[1]), *(_render(*cells[c]) for c in cols), site])
        )
    text = "\n".join(lines) + "\n"
    path = tmp_path_factory.mktemp("fuzz") / "survey.csv"
    path.write_bytes(text.encode(encoding))

    # --- oracle
    refused = False
    keep = []
    for i, (e, _, _, _) in enumerate(rows):
        if e[0] == "nonfinite" or (e[0] == "blank" and policy == "error"):
            refused = True
        elif e[0] == "num":
            keep.append(i)
    expected = {}
    try:
        for c in cols:
            col = _oracle_column([r[2][c] for r in rows], nonfinite)
            if col is not None:
                expected[COLUMNS[c]] = col
    except ValueError:
        refused = True
    if not expected:
        refused = True

    kw = {"x": "E", "y": "N", "crs": "EPSG:32750", "missing_coords": policy, "nonfinite": nonfinite}
    if refused:
        with pytest.raises(XProspectError):
            xp.read_samples(path, **kw)
        return
    ds = xp.read_samples(path, **kw)
    rep = xp.ingest_report(ds)
    assert rep["encoding"] == ("utf-8-sig" if encoding == "utf-8" or text.isascii() else "cp1252")
    assert ds["row"].values.tolist() == [i + 1 for i in keep]
    assert set(ds.data_vars) == set(expected)
    for name, col in expected.items():
        np.testing.assert_allclose(
            ds[name].values, col[keep], rtol=1e-12, equal_nan=True, err_msg=f"{name}\n{text}"
        )
    assert ds["site"].values.tolist() == [rows[i][3] for i in keep]
    np.testing.assert_allclose(
        ds["x"].values, [500_000.0 + rows[i][0][1] for i in keep], rtol=1e-15
    )
