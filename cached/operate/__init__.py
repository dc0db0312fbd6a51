"""Operating the daemon: metrics, purge, garbage collection, verify, explain, stats.

Each module holds one job and works on the store (and the pipeline's records)
through plain objects; the Admin servicer and the CLI only translate.
"""
