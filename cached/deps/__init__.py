"""Dependency layers: node_modules trees keyed by the deps key, lockfile resolution, and the Vite cache."""
