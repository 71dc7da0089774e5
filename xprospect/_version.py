"""The package version, in a module of its own so that any module may read it.

``xprospect/__init__.py`` (the package face) re-exports it; modules inside the package
import it from here, never from the face.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
