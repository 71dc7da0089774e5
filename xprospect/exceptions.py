"""Exceptions and warnings raised by xprospect."""

from __future__ import annotations

__all__ = [
    "CRSError",
    "DataError",
    "GridError",
    "IncompleteStoreError",
    "MissingFileError",
    "ModelCardError",
    "TrainingGroundError",
    "XProspectDeprecationWarning",
    "XProspectError",
    "XProspectWarning",
]


class XProspectError(ValueError):
    """Base class of every error xprospect raises on bad input.

    It subclasses :class:`ValueError` so that ``except ValueError`` keeps working.
    """


class DataError(XProspectError):
    """A table, file, column or value cannot be used as given."""


class MissingFileError(DataError, FileNotFoundError):
    """A file named as input does not exist (also a :class:`FileNotFoundError`)."""


class CRSError(XProspectError):
    """A coordinate reference system is missing, invalid or does not match."""


class GridError(XProspectError):
    """A grid or voxel template is malformed (spacing, orientation, overlap)."""


class ModelCardError(XProspectError):
    """A model, checkpoint or its card does not fit the data it is asked to handle."""


class XProspectWarning(UserWarning):
    """Something was handled by a stated policy that the user may want to know about."""


class XProspectDeprecationWarning(XProspectWarning, FutureWarning):
    """A renamed or moved public name was used; the message names its new home.

    It is a :class:`FutureWarning` (shown by default, so users see it) and an
    :class:`XProspectWarning` (so ``-W error::xprospect.XProspectWarning`` catches it).
    """


class IncompleteStoreError(DataError):
    """A zarr store's write did not finish: some of the chunks it must hold are missing.

    Raised on opening such a store (unless ``allow_incomplete=True``); finish it with
    ``to_zarr(..., resume=True)``.
    """


class TrainingGroundError(DataError):
    """The ground a model is to train on holds too few positions for a fit.

    Raised, for example, when too few autoencoder tiles lie among the normal, finite cells
    of a masked block model. A harness that runs many methods catches it (and only it) to
    leave that method's fold unscored with a warning instead of stopping every method.
    """
