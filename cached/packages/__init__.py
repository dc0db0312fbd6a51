"""The package store: registry packages kept once by integrity, and node_modules laid out from a lockfile."""
