"""How work runs: sandboxed steps, scratch dirs, single flight, the build environment and workspace."""
