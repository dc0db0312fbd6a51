"""Warm builders: long-lived sandboxed Node processes that rebuild an app without Node's start-up.

- ``driver.mjs``: runs inside the sandbox, imports Vite from the app's own
  node_modules and builds on request (line protocol: ``protocol.py``).
- ``builder.py``: one builder process and its overlay scratch.
- ``pool.py``: the bounded pool (count, total RSS, LRU, idle timeout) and its counters.
- ``layer.py``: the pipeline's warm layer (eligibility, retirement, reconcile,
  outputs, fallback, shadow checks).
"""

from cached.warm.builder import DRIVER, WarmBuilder, WarmError
from cached.warm.layer import SHADOW_PREFIX, WarmBuilt, WarmLayer, collect_outputs, is_config_file, plain_vite_build
from cached.warm.pool import WarmMetrics, WarmPool, WarmSettings

__all__ = [
    "DRIVER", "SHADOW_PREFIX", "WarmBuilder", "WarmBuilt", "WarmError", "WarmLayer", "WarmMetrics", "WarmPool",
    "WarmSettings", "collect_outputs", "is_config_file", "plain_vite_build",
]
