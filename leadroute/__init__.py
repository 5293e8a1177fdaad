"""leadroute: an open, self-hosted workbench for analytics-driven lead routing."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("leadroute")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
