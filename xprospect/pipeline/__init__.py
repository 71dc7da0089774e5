"""The prospectivity path as functions and as a configured, resumable pipeline.

:mod:`xprospect.pipeline.steps` holds one function per step (read, grid, transform, choose
elements, train, score, evaluate, targets, anomalies), each a thin composition of the
library's public verbs; :mod:`xprospect.pipeline.config` the configuration schema and its
validation; :mod:`xprospect.pipeline.run` the runner that executes the stages of a
configuration into one folder with a manifest, skipping the stages that are up to date. The
``xprospect`` command line is a thin layer over these.
"""

from __future__ import annotations

from xprospect.pipeline.config import (
    SCHEMA,
    ConfigError,
    example_config,
    load_config,
    validate_config,
)
from xprospect.pipeline.run import STAGES, PipelineResult, digest, run_pipeline
from xprospect.pipeline.steps import DEFAULT_TOP_PERCENT

__all__ = [
    "DEFAULT_TOP_PERCENT",
    "SCHEMA",
    "STAGES",
    "ConfigError",
    "PipelineResult",
    "digest",
    "example_config",
    "load_config",
    "run_pipeline",
    "validate_config",
]
