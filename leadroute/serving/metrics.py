"""Prometheus text metrics without a client library: counters and duration histograms.

Labels are route templates, status codes, policies and destinations — never a key, a lead id
or anything else a caller sends.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Labels, extra: str = "") -> str:
    parts = [f'{k}="{_escape(v)}"' for k, v in labels]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class Metrics:
    """Thread-safe counters and duration histograms (request latency by route, log fsyncs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[Labels, float]] = defaultdict(dict)
        self._help: dict[str, str] = {}
        self._hists: dict[str, dict[Labels, list[int]]] = defaultdict(dict)
        self._hist_sums: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self._help["leadroute_request_duration_seconds"] = "Request latency by route."

    def inc(self, name: str, help_text: str, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._help[name] = help_text
            series = self._counters[name]
            series[key] = series.get(key, 0.0) + amount

    def observe_latency(self, route: str, seconds: float) -> None:
        self.observe("leadroute_request_duration_seconds", "Request latency by route.", seconds, route=route)

    def observe(self, name: str, help_text: str, seconds: float, **labels: str) -> None:
        """One duration into the histogram ``name`` (buckets :data:`LATENCY_BUCKETS`)."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._help[name] = help_text
            counts = self._hists[name].setdefault(key, [0] * (len(LATENCY_BUCKETS) + 1))
            counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
            self._hist_sums[name][key] += seconds

    def render(self) -> str:
        """The exposition text format (version 0.0.4)."""
        out: list[str] = []
        with self._lock:
            for name, series in sorted(self._counters.items()):
                out += [f"# HELP {name} {self._help[name]}", f"# TYPE {name} counter"]
                out += [f"{name}{_labels(k)} {v:g}" for k, v in sorted(series.items())]
            for name in sorted({"leadroute_request_duration_seconds", *self._hists}):
                out += [f"# HELP {name} {self._help[name]}", f"# TYPE {name} histogram"]
                for key, counts in sorted(self._hists[name].items()):
                    running = 0
                    for bound, n in zip([*LATENCY_BUCKETS, float("inf")], counts, strict=True):
                        running += n
                        le = "+Inf" if bound == float("inf") else f"{bound:g}"
                        bucket = _labels(key, f'le="{le}"')
                        out.append(f"{name}_bucket{bucket} {running}")
                    out.append(f"{name}_sum{_labels(key)} {self._hist_sums[name][key]:.6f}")
                    out.append(f"{name}_count{_labels(key)} {running}")
        return "\n".join(out) + "\n"
