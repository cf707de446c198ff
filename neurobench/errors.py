"""Typed errors: each says what was expected, what was found, and what to do next."""

from __future__ import annotations


class NeurobenchError(Exception):
    """Base class of every error neurobench raises on purpose."""


class UnknownNameError(NeurobenchError, KeyError):
    """A model, benchmark or metric name that no registry knows."""

    def __init__(self, kind: str, name: str, known: list[str], suggestions: list[str]):
        self.kind, self.name, self.known, self.suggestions = kind, name, known, suggestions
        hint = f" Did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        super().__init__(
            f"unknown {kind} {name!r}.{hint} Run `neurobench list {kind}s` to see all {len(known)}."
        )

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return self.args[0]


class RenamedError(UnknownNameError):
    """A name that was renamed: the message gives the new name and why."""

    def __init__(self, kind: str, name: str, new: str, reason: str):
        self.kind, self.name, self.new, self.reason = kind, name, new, reason
        self.known, self.suggestions = [new], [new]
        NeurobenchError.__init__(
            self, f"{kind} {name!r} was renamed {new!r}: {reason}. Use {new!r}; results stored under the old "
            "name keep it.")


class PluginImportError(UnknownNameError):
    """A name that a plugin module declares, but the module failed to import."""

    def __init__(self, kind: str, name: str, known: list[str], suggestions: list[str], failed: dict[str, str]):
        self.kind, self.name, self.known, self.suggestions, self.failed = kind, name, known, suggestions, failed
        problems = "; ".join(f"{module}: {problem}" for module, problem in failed.items())
        NeurobenchError.__init__(
            self, f"{kind} {name!r} comes from plugin {' and '.join(failed)}, which failed to import ({problems}). "
            f"Install what it needs; `neurobench list {kind}s` shows what did load.")


class RegistrationError(NeurobenchError):
    """A plugin tried to register something invalid or clashing."""


class DataUnavailableError(NeurobenchError):
    """A data file is not in the cache or any mirror and cannot be downloaded."""


class ChecksumMismatchError(NeurobenchError):
    """A file's sha256 differs from its manifest: the copy is corrupt or from another release."""


class CheckpointError(NeurobenchError):
    """Model weights are missing, unreadable, or do not fit the architecture."""


class StimulusError(NeurobenchError):
    """Stimuli that cannot be read or converted for a model."""


class AlignmentError(NeurobenchError):
    """Two data objects describe different stimuli, or the same stimuli in another order."""


class InvalidInputError(NeurobenchError, ValueError):
    """Numeric input the metrics cannot score (NaN, wrong shape, too few samples, ...)."""


class DataFormatError(InvalidInputError):
    """A data file does not have the layout of the release its manifest describes (another
    release, a truncated export, a renamed variable): the message names what differs."""


class MemoryBudgetError(NeurobenchError, MemoryError):
    """The memory budget is too small for even the smallest unit of work."""


class ExtractionError(NeurobenchError):
    """A model raised while activations were being extracted, or its outputs were not one row per
    stimulus (fewer rows than it was given, a layer run twice or never reached)."""


class LayerNotReachedError(ExtractionError):
    """A requested layer produced no output in the forward pass (it is not on the model's path)."""


class CacheCorruptError(NeurobenchError):
    """An activation-cache entry failed its checksum or cannot be read: it is deleted and recomputed."""

    def __init__(self, path, why: str):
        self.path, self.why = path, why
        super().__init__(f"activation cache entry {path} is corrupt: {why}")


class LayerError(NeurobenchError, KeyError):
    """A layer name the model does not have."""

    def __str__(self) -> str:
        return self.args[0]


class NoSheetPositionsError(NeurobenchError):
    """A layer has no positions on a 2-D cortical sheet."""


class InvalidOptionError(NeurobenchError, ValueError):
    """A benchmark option the kind does not declare, or a value it does not accept."""


class ManifestError(NeurobenchError):
    """A data manifest that cannot be used: unreadable TOML, a missing or mistyped field, or a file
    name that breaks a naming rule. The message names the manifest, the entry and the rule."""


class UnsafePathError(NeurobenchError):
    """A name (manifest file, archive member, cache key) that would resolve outside its root."""


class HomeError(NeurobenchError):
    """NEUROBENCH_HOME is not a folder neurobench can write (a file, read-only, not creatable)."""


class ArchiveError(NeurobenchError):
    """An archive that cannot be unpacked safely: unreadable, or past the size or compression-ratio
    limits (a zip or tar bomb)."""


class DownloadTimeoutError(DataUnavailableError):
    """A download that stalled (no byte for the stall timeout) or ran past its deadline; what arrived
    is kept, so running the same command again resumes."""


class StoreError(NeurobenchError):
    """The results store cannot be used: a folder or unwritable path, a corrupt file, another
    program's database. Raised when the store is opened, before any scoring work."""


class SweepFileError(InvalidInputError):
    """A sweep file (TOML/YAML) or sweep argument that is malformed; names the bad key."""


class CheckpointStepError(InvalidInputError):
    """A checkpoint whose training step cannot be read from its file name (and has no mapping)."""


class ClusterError(NeurobenchError):
    """A Dask cluster that cannot be built or reached."""
