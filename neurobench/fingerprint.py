"""Configuration fingerprints: what makes two stored results "the same computation".

A result's **configuration** is everything that can change its numbers:

- the model (`model`: its identifier, controls included, e.g. `toporesnet18+shuffled`) and its
  weights (`weights_sha256`: the adapter's `weights_id`, a sha256 or `random-seed<N>`);
- the benchmark (`benchmark` id) and the **version of its metric** (`metric_version`, the kind's
  `Benchmark.metric_version`: a per-kind integer bumped only when a change to the kind or to the
  metrics it calls changes its numbers, so a neurobench release that changes no metric leaves every
  stored fingerprint valid; the neurobench version itself is provenance, not configuration);
- the layers asked for (`layers`: None for the model's default set), the read-out and forward
  precision (`readout`, `precision`), the `seed`, and every benchmark option in effect
  (`options`: `Benchmark.option_values()`, bootstrap count, reduction, ... included).

The device, batch size and memory budget are not part of it: they change how a score is computed,
not its numbers (neurobench's chunked paths are exact). The metric's conventions (normalisation,
interval) are fixed by the benchmark, its options and its metric version, and are stored beside.

`fingerprint(config)` is the sha256 of the configuration as canonical JSON (sorted keys); the
store keeps one result per fingerprint. A configuration is the benchmark's **default** when
layers, seed, read-out, precision and options are what `load_benchmark(id)` and the model give
without arguments; `differences` says what differs, `summary` says it in one line.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

DEFAULT_SEED = 0
DEFAULT_PRECISION = "float32"
NO_READOUT = "none"


def _plain(value: Any) -> Any:
    """A JSON-stable form of an option value (tuples as lists, numpy scalars as Python numbers)."""
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


def configuration(*, model: str, weights_sha256: str, benchmark: str, metric_version: int,
                  layers: Sequence[str] | None, options: Mapping[str, Any], seed: int = DEFAULT_SEED,
                  readout: str | None = None, precision: str = DEFAULT_PRECISION) -> dict[str, Any]:
    """The configuration of one result (see the module docstring), as plain JSON values."""
    return {"model": model, "weights_sha256": weights_sha256, "benchmark": benchmark,
            "metric_version": int(metric_version), "layers": None if layers is None else list(layers),
            "options": {k: _plain(v) for k, v in sorted(options.items())}, "seed": int(seed),
            "readout": readout or NO_READOUT, "precision": precision or DEFAULT_PRECISION}


def fingerprint(config: Mapping[str, Any]) -> str:
    """sha256 (hex) of the configuration as canonical JSON."""
    text = json.dumps(_plain(dict(config)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def differences(config: Mapping[str, Any], default_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """What differs from the benchmark's default configuration: {name: value} for layers, seed,
    read-out, precision and each option whose value is not the default (`default_options`: the
    options of a freshly loaded benchmark; None: the options are taken as the defaults)."""
    diff: dict[str, Any] = {}
    if config.get("layers") is not None:
        diff["layers"] = config["layers"]
    if config.get("seed", DEFAULT_SEED) != DEFAULT_SEED:
        diff["seed"] = config["seed"]
    if config.get("readout", NO_READOUT) != NO_READOUT:
        diff["readout"] = config["readout"]
    if config.get("precision", DEFAULT_PRECISION) != DEFAULT_PRECISION:
        diff["precision"] = config["precision"]
    if default_options is not None:
        defaults = {k: _plain(v) for k, v in default_options.items()}
        for name, value in config.get("options", {}).items():
            if name not in defaults or defaults[name] != value:
                diff[f"option {name}"] = value
    return diff


def summary(diff: Mapping[str, Any]) -> str:
    """One readable line of what differs from the default ('default' when nothing does)."""
    if not diff:
        return "default"

    def text(v):
        return ",".join(map(str, v)) if isinstance(v, list) else str(v)

    return "; ".join(f"{k}={text(v)}" for k, v in diff.items())


def short(fp: str | None) -> str:
    """The first 12 hex digits: what tables show (`--config` takes any unique prefix)."""
    return (fp or "")[:12]
