"""The operations settings of `cached serve`, and the size and age syntax operators type.

Sizes take decimal or binary units ("20GB", "512MiB", "0"); ages take a unit
suffix ("90s", "30m", "12h", "7d", "2w"). Both refuse anything else, so a typo
never turns into "purge everything".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
               "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_size(text: str) -> int:
    """Bytes from "20GB", "1.5GiB", "300k" or "0"; ValueError otherwise."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"size {text!r}: use a number with an optional unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)")
    unit = (m.group(2) or "").lower()
    unit = unit[:-1] if unit.endswith("b") and unit != "b" else unit
    return int(float(m.group(1)) * _SIZE_UNITS[unit])


def parse_age(text: str) -> float:
    """Seconds from "90s", "30m", "12h", "7d" or "2w"; ValueError otherwise."""
    m = _AGE.match(text)
    if not m:
        raise ValueError(f"age {text!r}: use a number with a unit: s, m, h, d or w (e.g. 7d)")
    return float(m.group(1)) * _AGE_UNITS[m.group(2).lower()]


def format_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"  # pragma: no cover


@dataclass(frozen=True)
class OperateConfig:
    """Metrics endpoint, disk cap and the protections garbage collection honours."""

    metrics_listen: str = ""       # "127.0.0.1:9464"; "" serves no metrics
    max_bytes: int = 0             # the cap (high watermark); 0: no automatic collection
    low_watermark: float = 0.9     # collect down to this fraction of the cap (at most 0.9)
    gc_interval_s: float = 60.0    # how often the cap is checked (builds that stored bytes check sooner)
    lease_seconds: float = 600.0   # a hit's outputs are never swept for this long
    grace_seconds: float = 60.0    # blobs younger than this are never swept

    def __post_init__(self) -> None:
        if self.max_bytes < 0:
            raise ValueError("--max-size cannot be negative")
        if not 0.0 < self.low_watermark <= 0.9:
            raise ValueError("--gc-low-watermark must be above 0 and at most 0.9 of --max-size")
        if self.gc_interval_s <= 0:
            raise ValueError("--gc-interval must be positive")
        if self.lease_seconds < 0 or self.grace_seconds < 0:
            raise ValueError("--lease-seconds and --gc-grace-seconds cannot be negative")


def metrics_address(listen: str) -> tuple[str, int]:
    """("127.0.0.1", 9464) from "127.0.0.1:9464", ":9464" or "9464" (a bare port stays on loopback)."""
    host, sep, port = listen.rpartition(":")
    if not sep:
        host, port = "", listen
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"--metrics-listen {listen!r}: use HOST:PORT, e.g. 127.0.0.1:9464")
    return host, int(port)
