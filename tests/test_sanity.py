"""Recipes that work on real surveys (issue 12, part 7): sizes in metres, sanity warnings, oxides.

Each warning fires on a crafted case. Silence on the demo is checked by tests/test_cli.py's
demo runs: pyproject's pytest settings turn every XProspectWarning into an error, so a
warning there fails them (and the silent cases below run under the same setting).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from torch.utils.data import TensorDataset

import xprospect as xp
from xprospect._dims import length_to_cells
from xprospect._sanity import (
    DomainCheck,
    warn_if_below_chance,
    warn_if_diverged,
    warn_if_out_of_domain,
)
from xprospect.evidence.oxides import analyte_element, oxide_pairs
from xprospect.exceptions import CRSError, DataError, XProspectWarning
from xprospect.models import SmallCNN
from xprospect.testing import raise_if_dask_computes

ELEMENTS = ["Au", "As", "Cu"]


@pytest.fixture(scope="module")
def survey():
    world = xp.synthetic.survey(seed=3, n_samples=600, n_deposits=12, elements=ELEMENTS)
    grid = xp.make_grid(like=world.samples, resolution=1000.0)
    maps = xp.grid_idw(world.samples, like=grid, k=8).prospect.log10().prospect.zscore()
    return world, maps


@pytest.fixture(scope="module")
def trained(survey):
    """The survey's stack and a one-epoch CNN trained on it (its card holds the domain)."""
    world, maps = survey
    stack = maps.prospect.stack(ELEMENTS).compute()
    patches = stack.prospect.patches(
        positives=world.deposits, negatives=40, size=7, jitter=1, seed=0
    )
    res = xp.train.fit(
        SmallCNN(3, window=7, widths=(4,), seed=0),
        patches,
        recipe="adam",
        epochs=1,
        device="cpu",
        progress=False,
    )
    return stack, res


# ---- sizes in metres ------------------------------------------------------------------------


def test_sizes_in_metres_become_cells(survey):
    world, maps = survey
    stack = maps.prospect.stack(ELEMENTS)
    assert length_to_cells("9 km", stack) == 9
    assert length_to_cells("9000 m", stack) == length_to_cells("9 cells", stack) == 9
    assert length_to_cells(7, stack) == 7
    by_m = stack.prospect.patches(
        positives=world.deposits, negatives=20, size="9 km", jitter="2 km", seed=0
    )
    by_c = stack.prospect.patches(positives=world.deposits, negatives=20, size=9, jitter=2, seed=0)
    np.testing.assert_array_equal(by_m.plan.origins, by_c.plan.origins)
    assert by_m.plan.size == by_c.plan.size
    with pytest.raises(DataError, match="shorter than one"):
        length_to_cells("200 m", stack)
    with pytest.raises(DataError, match="not a length"):
        length_to_cells("5 miles", stack)
    lonlat = xp.make_grid((115.0, -34.0, 116.0, -33.0), resolution=0.1, crs="EPSG:4326")
    with pytest.raises(CRSError, match="degrees"):
        length_to_cells("5 km", lonlat)


def test_windows_too_large_for_the_area_get_a_clear_error(survey):
    world, maps = survey
    stack = maps.prospect.stack(ELEMENTS)
    span = max(stack.sizes["x"], stack.sizes["y"])
    big = stack.prospect.patches(
        positives=world.deposits, negatives=20, size=span // 2, jitter=0, buffer=2000.0, seed=0
    )
    net = SmallCNN(3, window=span // 2, widths=(4,), seed=0)
    with pytest.raises(DataError, match="too small for a spatial validation split"):
        xp.train.fit(
            net, big, recipe="adam", epochs=1, validation=0.3, device="cpu", progress=False
        )


# ---- sanity warnings ------------------------------------------------------------------------


def test_constant_map_warns_in_evaluate_and_targets(survey):
    world, maps = survey
    const = xr.full_like(maps["Au"], 1.0).rename("score")
    with pytest.warns(XProspectWarning, match="constant"):
        xp.evaluate.evaluate(const, world.deposits, blocks=None)
    with pytest.warns(XProspectWarning, match="constant"):
        xp.evaluate.targets(const, quantiles=[0.9])


def test_diverged_training_warns():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 3, 8, 8, generator=g) * 50
    y = torch.arange(32) % 2
    net = SmallCNN(3, window=8, widths=(8,), seed=0)
    with pytest.warns(XProspectWarning, match="training diverged"):
        xp.train.fit(
            net, TensorDataset(x, y), recipe="adam", lr=1e4, epochs=2, device="cpu", progress=False
        )
    with pytest.warns(XProspectWarning, match="nan"):
        warn_if_diverged([0.7, float("nan")])
    with pytest.warns(XProspectWarning, match="rose"):
        warn_if_diverged([0.69, 0.05, 0.9])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_if_diverged([0.69, 0.5, 0.3, 0.31])


def test_auc_below_chance_warns():
    with pytest.warns(XProspectWarning, match="below the 0.5"):
        warn_if_below_chance(0.184, "the cross-validated AUC")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_if_below_chance(0.71, "the cross-validated AUC")
        assert not warn_if_below_chance(float("nan"), "the cross-validated AUC")


def test_scoring_far_outside_the_training_domain_warns(trained):
    stack, res = trained
    xp.score.score(stack, res.model, device="cpu")  # the training survey: silent
    shifted = stack.copy(data=stack.values * 1000.0 + 50.0)  # ppb read as ppm, say
    with pytest.warns(XProspectWarning, match="outside the training data's domain"):
        xp.score.score(shifted, res.model, device="cpu")
    z = np.random.default_rng(0).normal(size=(2, 500))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_if_out_of_domain(z, ["a", "b"]) == []


# ---- element / oxide pairs ------------------------------------------------------------------


def test_oxide_names_and_pairs():
    assert analyte_element("WO3") == ("W", True)
    assert analyte_element("Al2O3_pct") == ("Al", True)
    assert analyte_element("Mg_ppm_511") == ("Mg", False)
    assert analyte_element("LOI") is None and analyte_element("O") is None
    assert oxide_pairs(["Mg", "MgO", "W", "WO3", "Sr", "SrO", "Au"]) == [
        ("Mg", "MgO"),
        ("W", "WO3"),
        ("Sr", "SrO"),
    ]


@pytest.mark.parametrize(
    ("policy", "kept"), [("stronger", None), ("element", "Au"), ("oxide", "AuO")]
)
def test_selection_keeps_one_of_an_element_oxide_pair(survey, policy, kept):
    world, maps = survey
    both = maps.assign(AuO=maps["Au"] * 1.1 + 0.01, Au2O3=maps["Au"] * 1.2)  # one analyte, 3 names
    t = xp.evidence.select_elements(both, world.deposits, negatives=40, seed=0, oxides=policy)
    assert t.loc[["Au", "AuO", "Au2O3"], "selected"].sum() <= 1
    pair = t.attrs["oxide_pairs"][0]
    assert (pair["element"], pair["oxide"], pair["policy"]) == ("Au", "AuO", policy)
    want = kept or pair["kept"]
    for other in {"Au", "AuO", "Au2O3"} - {want}:
        assert t.loc[other, "duplicate_of"] == want and not t.loc[other, "selected"]
    assert t.loc[want, "duplicate_of"] == ""
    assert pair["names"] == ["Au", "AuO", "Au2O3"]
    none = xp.evidence.select_elements(both, world.deposits, negatives=40, seed=0, oxides=None)
    assert (none["duplicate_of"] == "").all()
    assert none.loc[["Au", "AuO", "Au2O3"], "selected"].nunique() == 1


def test_out_of_domain_check_of_a_lazy_stack_rides_along_with_the_score(trained):
    """Issue 12, part 7: a lazy stack is checked by the score's own compute, not one of its own."""
    stack, res = trained
    shifted = stack.copy(data=stack.values * 1000.0 + 50.0).chunk({"y": 40, "x": 40})
    assert shifted.data.npartitions > 1
    with raise_if_dask_computes():  # building the map computes nothing, the check included
        lazy = xp.score.score(shifted, res.model, device="cpu", progress=False)
    with (
        raise_if_dask_computes(max_computes=1),
        pytest.warns(XProspectWarning, match="outside the training data's domain"),
    ):
        lazy.compute()  # one compute: the map and the check
    # the same verdict as the in-memory check; silent on the training survey, lazily
    same = stack.chunk({"y": 40, "x": 40})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = xp.score.score(same, res.model, device="cpu", progress=False).values
    np.testing.assert_array_equal(got, xp.score.score(stack, res.model, device="cpu").values)


def test_domain_check_histogram_agrees_with_the_exact_quantiles():
    rng = np.random.default_rng(1)
    z = np.stack([rng.normal(size=4000), rng.normal(4.0, 1.0, size=4000)])[:, None, :]
    check = DomainCheck(["a", "b"], total=2, key="test-hist")
    info = [
        {None: {"array-location": [(0, 2), (0, 1), (k * 2000, (k + 1) * 2000)]}} for k in range(2)
    ]
    check(z[..., :2000], block_info=info[0])
    check(z[..., :2000], block_info=info[0])  # the same chunk again counts once
    with pytest.warns(XProspectWarning, match=r"b \(median \+4"):
        check(z[..., 2000:], block_info=info[1])
    with pytest.warns(XProspectWarning, match=r"b \(median \+4") as rec:
        exact = warn_if_out_of_domain(z, ["a", "b"])
    assert len(rec) == 1 and exact == ["b (median +4 sd, spread x1)"]


class _FixedRanker(torch.nn.Module):
    """A window classifier that ranks by one element at the centre cell, with a sign.

    Its one parameter has no effect on the output, so training cannot change its ranking:
    the cross-validated AUC is that of the sign's ranking on the held-out points.
    """

    def __init__(self, sign: float) -> None:
        super().__init__()
        self.sign = sign
        self.unused = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[-1] // 2
        s = self.sign * torch.tanh(x[:, 0, c, c]) + 0.0 * self.unused  # bounded logits
        return torch.stack([torch.zeros_like(s), s], dim=1)


def _cv_with_fixed_ranker(survey, sign: float):
    world, maps = survey
    stack = maps.prospect.stack(ELEMENTS).compute()  # Au first: high at the deposits
    return xp.train.cross_validate(
        stack,
        world.deposits,
        window=5,
        jitter=1,
        n_per_positive=2,
        negatives=60,
        n_folds=3,
        model=lambda n, seed: xp.models.wrap(_FixedRanker(sign), kind="window", window=5),
        fit_kwargs={"epochs": 1, "device": "cpu", "validation": None, "early_stopping": None},
        score_kwargs={"device": "cpu"},
        seed=0,
    )


def test_cross_validated_auc_below_chance_warns_end_to_end(survey):
    """Deposits sit on high Au; a model ranking by low Au is worse than random."""
    with pytest.warns(XProspectWarning, match="below the 0.5") as rec:
        cv = _cv_with_fixed_ranker(survey, sign=-1.0)
    assert cv.auc < 0.5 and f"{cv.auc:.3f}" in str(rec[0].message)
    with warnings.catch_warnings():  # the same path on the synthetic survey, ranked right
        warnings.simplefilter("error")
        assert _cv_with_fixed_ranker(survey, sign=1.0).auc > 0.5


def test_cross_validation_sizes_in_metres_equal_the_cells(survey):
    """cross_validate took only cells: ``window="5 km"`` failed with a raw TypeError."""
    world, maps = survey
    stack = maps.prospect.stack(ELEMENTS).compute()

    def cv(**sizes):
        return xp.train.cross_validate(
            stack,
            world.deposits,
            n_per_positive=2,
            negatives=60,
            n_folds=3,
            **sizes,
            model=lambda n, seed: xp.models.wrap(_FixedRanker(1.0), kind="window", window=5),
            fit_kwargs={"epochs": 1, "device": "cpu", "validation": None, "early_stopping": None},
            score_kwargs={"device": "cpu"},
            seed=0,
        )

    by_m = cv(window="5 km", patch_size="9000 m", jitter="1 km")
    by_c = cv(window=5, patch_size=9, jitter=1)
    assert {k: by_m.settings[k] for k in ("window", "patch_size", "jitter", "buffer")} == {
        "window": 5,
        "patch_size": 9,
        "jitter": 1,
        "buffer": 10_000.0,
    }
    pd.testing.assert_frame_equal(by_m.points, by_c.points)
    with pytest.raises(DataError, match="not a length"):
        cv(window="5 miles")
