"""What a sweep computes: models x weights x benchmarks, checkpoints in step order, sweep files.

**Checkpoint steps.** `--weights` may be a folder or a glob of checkpoints (`*.pt`, `*.pth`,
`*.ckpt`, `*.safetensors`, `*.bin`), one training run's trajectory; each is labelled with its
training step, read from its file name:

1. the number after `step` (`step_001000.pt` -> 1000, `epoch=3-step=1200.ckpt` -> 1200,
   `model-step5.pt` -> 5);
2. otherwise the file stem's only run of digits, when the stem does not name an epoch
   (`ckpt-500.pt` -> 500, `000300.pth` -> 300);
3. otherwise an error naming the file (`CheckpointStepError`); a sweep file's `steps` table maps
   file names to steps explicitly and overrides the rule.

Checkpoints are scored in step order; two files with the same step are an error.

**Request keys.** A sweep decides what is done *before* loading a model, so it keys each
(model, weights, benchmark) by the request as given: model name and control, the weights as asked
for (`published`, `random`, or a checkpoint file's sha256), benchmark, metric version, layers,
options, seed, read-out and precision. A stored result records the request it answered, and the
configuration fingerprint it has (`neurobench.fingerprint`); the store keeps one result per
fingerprint either way.
"""

from __future__ import annotations

import glob
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CheckpointStepError, SweepFileError

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors", ".bin")
_STEP = re.compile(r"step[=_\-]?(\d+)", re.IGNORECASE)
_DIGITS = re.compile(r"\d+")


def checkpoint_step(path: str | Path, steps: Mapping[str, int] | None = None) -> int:
    """The training step of a checkpoint file (module docstring: the rule; `steps` maps file
    names to steps and wins)."""
    name = Path(path).name
    if steps and name in steps:
        return int(steps[name])
    match = _STEP.search(name)
    if match:
        return int(match.group(1))
    stem = Path(name).stem
    runs = _DIGITS.findall(stem)
    if len(runs) == 1 and "epoch" not in stem.lower():
        return int(runs[0])
    raise CheckpointStepError(
        f"cannot read the training step of checkpoint {name!r} from its name (expected 'step' followed by a number, "
        "e.g. step_001000.pt or epoch=3-step=1200.ckpt, or a name with one number, e.g. ckpt-500.pt); rename it or "
        f"map it in the sweep file: [models.steps] \"{name}\" = <step>")


def checkpoints(spec: str, steps: Mapping[str, int] | None = None) -> list[tuple[int, Path]]:
    """(step, file) of every checkpoint a folder or glob names, in step order."""
    path = Path(spec).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in CHECKPOINT_SUFFIXES and p.is_file())
    else:
        files = sorted(Path(p) for p in glob.glob(str(path)) if Path(p).is_file())
    if not files:
        raise SweepFileError(f"weights {spec!r}: no checkpoint files ({', '.join(CHECKPOINT_SUFFIXES)}) there")
    found = sorted((checkpoint_step(f, steps), f) for f in files)
    seen: dict[int, Path] = {}
    for step, f in found:
        if step in seen:
            raise CheckpointStepError(f"checkpoints {seen[step].name!r} and {f.name!r} both have step {step}; map "
                                      "them to distinct steps in the sweep file's steps table")
        seen[step] = f
    return found


def is_checkpoint_set(weights: str | None) -> bool:
    """A folder or a glob (several checkpoints), not one file, 'random' or the published weights."""
    if weights is None or weights == "random":
        return False
    return Path(weights).expanduser().is_dir() or any(c in weights for c in "*?[")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Unit:
    """One unit of work: a (model, weights) with all its benchmarks, so each stimulus set is
    extracted once per model. `requests` maps each benchmark to its request key."""

    model: str
    weights: str | None
    weights_label: str
    step: int | None
    benchmarks: tuple[str, ...]
    requests: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.model + ("" if self.weights_label == "published" else f" @ {self.weights_label}")


def weights_units(model: str, weights: str | None, steps: Mapping[str, int] | None = None
                  ) -> list[tuple[str | None, str, str, int | None]]:
    """(weights argument, label, identity for request keys, step) per weights of a model."""
    if weights is None:
        return [(None, "published", "published", None)]
    if weights == "random":
        return [("random", "random", "random", None)]
    if is_checkpoint_set(weights):
        return [(str(f), f.name, "sha256:" + file_sha256(f), step) for step, f in checkpoints(weights, steps)]
    path = Path(weights).expanduser()
    if not path.is_file():
        raise SweepFileError(f"weights {weights!r} of model {model!r}: no such file, folder or glob match")
    try:  # one checkpoint: its step when its name gives one (a trajectory of one), else none
        step = checkpoint_step(path, steps)
    except CheckpointStepError:
        step = None
    return [(str(path), path.name, "sha256:" + file_sha256(path), step)]


def request_key(*, model: str, weights: str, benchmark: str, metric_version: int, layers: Sequence[str] | None,
                options: Mapping[str, Any], seed: int, readout: str | None, precision: str | None,
                positions: str) -> str:
    """The key of one (model, weights, benchmark) request (module docstring)."""
    from ..fingerprint import _plain

    record = {"model": model, "weights": weights, "benchmark": benchmark, "metric_version": metric_version,
              "layers": None if layers is None else list(layers), "options": _plain(dict(sorted(options.items()))),
              "seed": seed, "readout": readout or "none", "precision": precision or "float32", "positions": positions}
    return "request:" + hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


# ------------------------------------------------------------------------------------ sweep files

@dataclass
class ModelSpec:
    name: str
    weights: list[str | None] = field(default_factory=lambda: [None])
    steps: dict[str, int] = field(default_factory=dict)


_TOP = {"models", "benchmarks", "plugins", "options", "layers", "seed", "device", "batch_size", "memory_budget",
        "readout", "precision", "positions", "store", "cluster"}
_MODEL = {"name", "weights", "steps"}
CLUSTER_KEYS = {"workers", "threads_per_worker", "scheduler", "kind", "cores", "memory", "gpus", "queue", "walltime",
                "processes", "account", "job_extra"}


def _strings(value, key: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SweepFileError(f"sweep file: {key!r} must be a string or a list of strings, got {value!r}")
    return list(value)


def _model_spec(entry, where: str) -> ModelSpec:
    if isinstance(entry, str):
        return ModelSpec(entry)
    if not isinstance(entry, dict):
        raise SweepFileError(f"sweep file: {where} must be a model name or a table with 'name', got {entry!r}")
    unknown = sorted(set(entry) - _MODEL)
    if unknown:
        raise SweepFileError(f"sweep file: unknown key(s) {unknown} in {where}; a model takes {sorted(_MODEL)}")
    if not isinstance(entry.get("name"), str):
        raise SweepFileError(f"sweep file: {where} needs a 'name' (a registered model)")
    weights = entry.get("weights")
    weights = [None] if weights is None else _strings(weights, f"{where}.weights")
    steps = entry.get("steps", {})
    if not isinstance(steps, dict) or not all(isinstance(v, int) and not isinstance(v, bool) for v in steps.values()):
        raise SweepFileError(f"sweep file: {where}.steps must map checkpoint file names to whole numbers")
    return ModelSpec(entry["name"], weights, dict(steps))


def read_sweep_file(path: str | Path) -> dict[str, Any]:
    """A sweep file (TOML, or YAML by its .yaml/.yml suffix) as checked `sweep()` arguments
    (README: "The sweep file"); an unknown or malformed key raises SweepFileError naming it."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise SweepFileError(f"sweep file {path}: no such file")
    text = path.read_text()
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            import tomllib  # Python >= 3.11

            data = tomllib.loads(text)
    except Exception as exc:  # tomllib / yaml syntax errors
        raise SweepFileError(f"sweep file {path} is not valid {'YAML' if path.suffix in ('.yaml', '.yml') else 'TOML'}: "
                             f"{exc}") from None
    if not isinstance(data, dict):
        raise SweepFileError(f"sweep file {path}: expected a table of keys at the top level")
    unknown = sorted(set(data) - _TOP)
    if unknown:
        raise SweepFileError(f"sweep file {path}: unknown key(s) {unknown}; it takes {sorted(_TOP)}")
    if "models" not in data:
        raise SweepFileError(f"sweep file {path}: 'models' is required (a list of names or tables)")
    models = data["models"] if isinstance(data["models"], list) else [data["models"]]
    out: dict[str, Any] = {"models": [_model_spec(m, f"models[{i}]") for i, m in enumerate(models)]}
    if "benchmarks" in data:
        out["benchmarks"] = _strings(data["benchmarks"], "benchmarks")
    if "plugins" in data:
        base = path.parent
        out["plugins"] = [str(base / p) if p.endswith(".py") and not Path(p).is_absolute() else p
                          for p in _strings(data["plugins"], "plugins")]
    if "layers" in data:
        out["layers"] = _strings(data["layers"], "layers")
    if "options" in data:
        if not isinstance(data["options"], dict):
            raise SweepFileError(f"sweep file {path}: 'options' must be a table of benchmark options")
        out["option_text"] = {str(k): v if isinstance(v, str) else json.dumps(v) if isinstance(v, (list, bool))
                              else str(v) for k, v in data["options"].items()}
    for key, kind in (("seed", int), ("batch_size", int), ("device", str), ("readout", str), ("precision", str),
                      ("positions", str), ("store", str), ("memory_budget", (str, int))):
        if key in data:
            if not isinstance(data[key], kind) or isinstance(data[key], bool):
                raise SweepFileError(f"sweep file {path}: {key!r} has the wrong type ({data[key]!r})")
            out[key] = data[key]
    if "cluster" in data:
        cluster = data["cluster"]
        if not isinstance(cluster, dict):
            raise SweepFileError(f"sweep file {path}: 'cluster' must be a table")
        unknown = sorted(set(cluster) - CLUSTER_KEYS)
        if unknown:
            raise SweepFileError(f"sweep file {path}: unknown key(s) {unknown} in [cluster]; it takes "
                                 f"{sorted(CLUSTER_KEYS)}")
        out["cluster"] = dict(cluster)
    return out
