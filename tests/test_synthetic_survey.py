"""Barren look-alike anomalies of the synthetic survey world (issue 13: a world where the
spatial shape of an anomaly, not its per-cell signature, tells a deposit from a barren one)."""

from __future__ import annotations

import numpy as np
import pytest

import xprospect as xp
from xprospect._dims import get_crs

ELEMENTS = ["Au", "As", "Cu"]


def test_no_barren_anomalies_is_the_same_world():
    a = xp.synthetic.survey(seed=2, n_samples=200, elements=ELEMENTS)
    b = xp.synthetic.survey(seed=2, n_samples=200, elements=ELEMENTS, n_barren=0)
    assert a.samples.identical(b.samples) and a.barren is None and b.barren is None


def test_barren_anomalies_share_the_signature_over_wider_halos():
    plain = xp.synthetic.survey(seed=2, n_samples=200, n_deposits=4, elements=ELEMENTS)
    w = xp.synthetic.survey(
        seed=2, n_samples=200, n_deposits=4, elements=ELEMENTS, n_barren=3, barren_width=3.0
    )
    assert w.deposits.identical(plain.deposits)
    assert w.barren.sizes["barren"] == 3 and get_crs(w.barren) is not None
    bx, by = w.barren["x"].values, w.barren["y"].values
    s = w.barren["strength"].values
    for e, amp in (("Au", 1.6), ("As", 1.2), ("Cu", 0.8)):
        # the barren cores carry the deposits' anomaly: amplitude x strength above background
        lift = w.log10_truth(bx, by, e) - plain.log10_truth(bx, by, e)
        assert np.all(lift >= amp * s - 1e-9)
    # a deposit's halo falls to exp(-1/2) at one width; a barren one keeps exp(-1/18) there
    width = w._base_width * 0.6  # Au's halo width
    at = w.barren_footprint(bx + width, by, 0.6) / w.barren_footprint(bx, by, 0.6)
    assert np.all(at > 0.9)
    one = xp.synthetic.survey(seed=2, n_samples=50, n_deposits=1, elements=["Au"])
    dx, dy = one.deposits["x"].values, one.deposits["y"].values
    ratio = one.footprint(dx + width, dy, 0.6) / one.footprint(dx, dy, 0.6)
    np.testing.assert_allclose(ratio, np.exp(-0.5))


@pytest.mark.parametrize("kw", [{"n_barren": -1}, {"n_barren": 2, "barren_width": 0.0}])
def test_bad_barren_settings_are_named(kw):
    with pytest.raises(xp.DataError, match="n_barren"):
        xp.synthetic.survey(seed=0, n_samples=20, elements=["Au"], **kw)
