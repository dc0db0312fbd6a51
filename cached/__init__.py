"""cached: a content-addressed incremental build cache daemon for Vite apps."""

__version__ = "0.1.0"
