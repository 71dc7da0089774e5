"""Element and oxide names of one analyte: ``Mg`` and ``MgO``, ``W`` and ``WO3``, ``Fe2O3``.

Laboratories report major elements as oxides (``MgO_pct``) and traces as elements
(``Mg_ppm``); a survey merged from several batches often holds both for one element. They
measure the same thing, so a selection keeping both double-counts it. :func:`oxide_pairs`
finds the pairs from the variable names: a name is read as its part before the first
``_`` (units and method suffixes such as ``_ppm_511`` are ignored) and matched, case
insensitively, against the chemical symbols (``CU`` is copper) and oxide formulas
``<symbol>[n]O[m]`` (``SiO2``, ``Al2O3``, ``K2O``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["SYMBOLS", "analyte_element", "analyte_groups", "oxide_pairs"]

#: The chemical symbols (H to Og).
SYMBOLS = tuple(
    (
        "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge "
        "As Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm "
        "Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th "
        "Pa U Np Pu Am Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og"
    ).split()
)
_BY_LOWER = {s.lower(): s for s in SYMBOLS}
_OXIDE = re.compile(r"^([A-Za-z]{1,2}?)(\d*)[Oo](\d*)$")


def analyte_element(name: str) -> tuple[str, bool] | None:
    """Return the element a variable name measures, and whether it is given as an oxide.

    Parameters
    ----------
    name : str
        A variable name such as ``"Mg"``, ``"MgO_pct"``, ``"Fe2O3"`` or ``"CU"``.

    Returns
    -------
    (str, bool) or None
        ``(symbol, is_oxide)``; None when the name is neither a symbol nor an oxide formula.

    Examples
    --------
    >>> analyte_element("MgO_pct"), analyte_element("W"), analyte_element("Fe2O3")
    (('Mg', True), ('W', False), ('Fe', True))
    >>> analyte_element("CU"), analyte_element("LOI")
    (('Cu', False), None)
    """
    head = str(name).split("_", 1)[0].strip()
    sym = _BY_LOWER.get(head.lower())
    if sym is not None and head.lower() != "o":
        return sym, False
    m = _OXIDE.match(head)
    if m is None:
        return None
    sym = _BY_LOWER.get(m.group(1).lower())
    if sym is None or sym == "O":
        return None
    return sym, True


def oxide_pairs(names: Iterable[str]) -> list[tuple[str, str]]:
    """Return the pairs ``(element name, oxide name)`` of variables measuring one element.

    Parameters
    ----------
    names : iterable of str
        Variable names.

    Returns
    -------
    list of (str, str)
        One pair per element reported both ways (the first name of each form, in input
        order).

    Examples
    --------
    >>> oxide_pairs(["Au", "Mg", "MgO", "W", "WO3", "Sr", "Cu", "SrO_pct"])
    [('Mg', 'MgO'), ('W', 'WO3'), ('Sr', 'SrO_pct')]
    """
    plain: dict[str, str] = {}
    oxide: dict[str, str] = {}
    for n in names:
        parsed = analyte_element(n)
        if parsed is None:
            continue
        sym, is_oxide = parsed
        (oxide if is_oxide else plain).setdefault(sym, str(n))
    return [(plain[s], oxide[s]) for s in plain if s in oxide]


def analyte_groups(names: Iterable[str]) -> dict[str, list[str]]:
    """Names measuring one element, for every element measured under more than one name.

    Parameters
    ----------
    names : iterable of str
        Variable names.

    Returns
    -------
    dict of str to list of str
        Element symbol -> its names in input order (element forms first, then oxides), only
        where there are two or more (``Fe_ppm``, ``Fe2O3_pct``, ``FeO_pct``).

    Examples
    --------
    >>> analyte_groups(["Au", "Fe_ppm", "Fe2O3_pct", "FeO_pct", "Mg", "MgO"])
    {'Fe': ['Fe_ppm', 'Fe2O3_pct', 'FeO_pct'], 'Mg': ['Mg', 'MgO']}
    """
    groups: dict[str, tuple[list[str], list[str]]] = {}
    for n in names:
        parsed = analyte_element(n)
        if parsed is None:
            continue
        sym, is_oxide = parsed
        plain, oxide = groups.setdefault(sym, ([], []))
        (oxide if is_oxide else plain).append(str(n))
    return {s: p + o for s, (p, o) in groups.items() if len(p) + len(o) > 1 and p and o}
