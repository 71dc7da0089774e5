"""Sphinx configuration of the xprospect documentation (API reference from numpydoc docstrings)."""

from __future__ import annotations

import warnings

import xprospect
from xprospect.exceptions import XProspectDeprecationWarning

# deprecated alias modules are imported by the recursive API summary; they warn, which is right
# for users and noise here
warnings.filterwarnings("ignore", category=XProspectDeprecationWarning)

project = "xprospect"
author = "xprospect developers"
release = xprospect.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "tutorials/*.ipynb_checkpoints"]
templates_path = ["_templates"]
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {
    # sklearn adds metadata-routing setters to every estimator subclass; they are not ours
    "exclude-members": "set_fit_request,set_predict_request,set_score_request,"
    "set_transform_request,set_output,get_metadata_routing,get_params,set_params",
}
autodoc_typehints = "none"  # numpydoc's parameter sections carry the types
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()
myst_heading_anchors = 3
suppress_warnings = ["myst.xref_missing"]
nitpicky = False
html_theme = "alabaster"
html_title = f"xprospect {release}"
