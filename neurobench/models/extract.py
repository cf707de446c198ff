"""Streaming extraction: batches flow through the model once, each layer's rows go to a sink.

Nothing holds every layer of every stimulus in memory. Per batch, forward hooks reduce each
hooked layer's output on the device (the read-out: pooling, projection, PCA), the rows are
checked (one output per stimulus of the batch, every requested layer reached, each exactly
once), copied to the host (pinned buffers and non-blocking copies on a GPU) and handed to one
sink per layer: an in-memory array for small results, or a chunked, compressed file
(`layerfile.LayerWriter`) written by a background thread, so compression overlaps the next
forward pass. Images are decoded and preprocessed by loader threads ahead of the model
(`prefetch`); PIL and numpy release the GIL for that work.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext

import numpy as np
import torch

from ..errors import (
    ExtractionError,
    InvalidInputError,
    LayerNotReachedError,
    MemoryBudgetError,
    NeurobenchError,
)
from ..memory import format_size_up
from .layerfile import LayerWriter

log = logging.getLogger(__name__)

PRECISIONS = {"float32": None, "float16": torch.float16, "bfloat16": torch.bfloat16}
WRITER_QUEUE_BYTES = 256 * 2**20  # most bytes waiting for the background writer


def default_workers() -> int:
    """Loader threads: NEUROBENCH_LOADER_WORKERS, else 2 (measured best on 2 and more cores)."""
    raw = os.environ.get("NEUROBENCH_LOADER_WORKERS")
    return max(0, int(raw)) if raw else 2


def check_precision(precision: str, device: torch.device) -> None:
    if precision not in PRECISIONS:
        raise InvalidInputError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    if precision != "float32" and device.type != "cuda":
        raise InvalidInputError(f"{precision} extraction is for GPUs (--device cuda); on {device.type} use float32")


def prefetch(make_batch: Callable[[int], object], n_batches: int, workers: int, pin: bool = False) -> Iterator:
    """Batches 0..n-1 in order, each built by `make_batch(i)` on `workers` threads ahead of use.

    At most `workers + 1` batches are built or waiting at any time; `workers=0` builds them in
    the caller's thread. `pin`: put tensors in page-locked memory (for non-blocking GPU copies).
    """
    def build(i):
        batch = make_batch(i)
        return batch.pin_memory() if pin and isinstance(batch, torch.Tensor) else batch

    if workers <= 0 or n_batches <= 1:
        for i in range(n_batches):
            yield build(i)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="neurobench-loader") as pool:
        pending = [pool.submit(build, i) for i in range(min(n_batches, workers + 1))]
        nxt = len(pending)
        for _ in range(n_batches):
            fut = pending.pop(0)
            if nxt < n_batches:
                pending.append(pool.submit(build, nxt))
                nxt += 1
            yield fut.result()


class BackgroundWriter:
    """Runs sink appends on one thread, in order, with at most `max_bytes` queued.

    An error in the thread is raised by the next `put` or by `close`.
    """

    def __init__(self, max_bytes: int = WRITER_QUEUE_BYTES):
        self.max_bytes = max_bytes
        self._queue: queue.Queue = queue.Queue()
        self._bytes = 0
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="neurobench-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, rows = item
            try:
                if self._error is None:
                    fn(rows)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                self._error = exc
            with self._cond:
                self._bytes -= rows.nbytes
                self._cond.notify_all()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, fn: Callable[[np.ndarray], None], rows: np.ndarray) -> None:
        self._raise()
        with self._cond:
            while self._bytes > 0 and self._bytes + rows.nbytes > self.max_bytes and self._error is None:
                self._cond.wait()
            self._bytes += rows.nbytes
        self._queue.put((fn, rows))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._raise()


class LayerSinks:
    """Where each layer's rows go: in memory when the whole result is small, else files.

    `file_writer(layer)` returns a `LayerWriter` (a cache entry or a temporary file) or None to
    keep that layer in memory; it is asked at the first batch, when the layers' widths are known,
    with `in_memory` telling whether all layers together fit `memory_limit` bytes.
    """

    def __init__(self, layers: list[str], n_total: int, file_writer: Callable[[str, bool], LayerWriter | None],
                 memory_limit: int | None, background: bool = True, queue_bytes: int = WRITER_QUEUE_BYTES,
                 files_always: bool = False):
        self.layers, self.n_total = list(layers), int(n_total)
        self._file_writer, self.memory_limit = file_writer, memory_limit
        self.arrays: dict[str, np.ndarray] = {}
        self.writers: dict[str, LayerWriter] = {}
        self.rows = dict.fromkeys(self.layers, 0)
        self.queue_bytes = int(queue_bytes)
        self.files_always = files_always
        self._background = BackgroundWriter(self.queue_bytes) if background else None
        self._opened = False

    def buffer_bytes(self, widths: dict[str, int]) -> int:
        """Memory that does not grow with the batch: the writer queue and one chunk row per layer
        written to a file (an in-memory result is counted as the result itself)."""
        total = sum(self.n_total * w * 4 for w in widths.values())
        if not self.files_always and (self.memory_limit is None or total <= self.memory_limit):
            return total
        return self.queue_bytes + _chunk_rows(widths, self.n_total)

    def _open(self, first: dict[str, np.ndarray]) -> None:
        total = sum(self.n_total * rows.shape[1] * 4 for rows in first.values())
        in_memory = self.memory_limit is None or total <= self.memory_limit
        for layer, rows in first.items():
            writer = self._file_writer(layer, in_memory)
            if writer is None:
                self.arrays[layer] = np.empty((self.n_total, rows.shape[1]), dtype=np.float32)
            else:
                self.writers[layer] = writer
        self._opened = True

    def append(self, batch: dict[str, np.ndarray]) -> None:
        """One batch's rows for every layer (already checked for counts)."""
        if not self._opened:
            self._open(batch)
        for layer, rows in batch.items():
            start = self.rows[layer]
            if layer in self.arrays:
                self.arrays[layer][start:start + len(rows)] = rows
            elif self._background is not None:
                self._background.put(self.writers[layer].append, rows)
            else:
                self.writers[layer].append(rows)
            self.rows[layer] = start + len(rows)

    def finish(self) -> None:
        """Wait for pending writes and check that every layer has one row per stimulus."""
        if self._background is not None:
            self._background.close()
            self._background = None
        short = {k: v for k, v in self.rows.items() if v != self.n_total}
        if short:
            raise ExtractionError(f"expected {self.n_total} rows per layer, got {short}")

    def abort(self) -> None:
        if self._background is not None:
            try:
                self._background.close()
            except BaseException:  # noqa: BLE001 - aborting anyway
                pass
            self._background = None
        for writer in self.writers.values():
            writer.abort()


def _chunk_rows(widths: dict[str, int], n_total: int) -> int:
    from .layerfile import chunk_shape

    return sum(chunk_shape(n_total, w)[0] * w * 4 for w in widths.values())


class HookedRun:
    """Forward hooks on `layer_modules` that reduce each output with `transform` and check it.

    Per forward pass, `collect(expected_rows)` returns {layer: (rows, units) float32 tensor on
    the device} or raises ExtractionError: a layer that produced fewer or more rows than the
    batch held, a layer run more than once (its output is ambiguous), or a layer never reached
    (LayerNotReachedError).
    """

    def __init__(self, layer_modules: dict[str, torch.nn.Module],
                 transform: Callable[[str, torch.Tensor], torch.Tensor] | None = None):
        self.layer_modules = layer_modules
        self.transform = transform
        self.got: dict[str, torch.Tensor] = {}
        self.calls: dict[str, int] = {}
        self.raw_bytes: dict[str, int] = {}
        self.handles = []

    def __enter__(self) -> HookedRun:
        def make(name):
            def hook(_mod, _inp, out):
                if isinstance(out, (tuple, list)):
                    out = out[0]
                self.calls[name] = self.calls.get(name, 0) + 1
                if self.calls[name] > 1:
                    return
                out = out.detach()
                self.raw_bytes[name] = out.numel() * out.element_size() // max(1, out.shape[0] if out.dim() else 1)
                red = self.transform(name, out) if self.transform is not None else out
                self.got[name] = red.reshape(red.shape[0], -1) if red.dim() else red.reshape(1, 1)
            return hook

        self.handles = [m.register_forward_hook(make(n)) for n, m in self.layer_modules.items()]
        return self

    def __exit__(self, *exc) -> None:
        for h in self.handles:
            h.remove()

    def reset(self) -> None:
        self.got, self.calls = {}, {}

    def collect(self, expected_rows: int) -> dict[str, torch.Tensor]:
        missing = [n for n in self.layer_modules if n not in self.got]
        if missing:
            raise LayerNotReachedError(
                f"layer(s) {missing} produced no output in the forward pass (the model never runs them); "
                "choose layers on the model's forward path")
        twice = {n: c for n, c in self.calls.items() if c > 1}
        if twice:
            raise ExtractionError(
                f"layer(s) {sorted(twice)} ran {sorted(set(twice.values()))} times in one forward pass (a module "
                "used more than once); their output per stimulus is ambiguous: hook a module that runs once")
        check_rows(self.got, expected_rows)
        out, self.got = self.got, {}
        self.calls = {}
        return out


def check_rows(batch: dict[str, torch.Tensor], expected_rows: int) -> None:
    """ExtractionError unless every layer returned one row per stimulus of the batch."""
    wrong = {n: int(t.shape[0]) for n, t in batch.items() if t.shape[0] != expected_rows}
    if wrong:
        raise ExtractionError(
            f"the batch held {expected_rows} stimuli but layer(s) returned {wrong} rows; a model must return "
            "one output per input along the first dimension")


@contextmanager
def model_errors():
    """An exception the model raises becomes ExtractionError; neurobench's typed errors pass through."""
    try:
        yield
    except NeurobenchError:
        raise
    except Exception as exc:
        raise ExtractionError(f"the model raised during activation extraction: {type(exc).__name__}: {exc}") from exc


def to_host(batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Device rows -> float32 numpy; on a GPU through pinned buffers with one synchronisation."""
    first = next(iter(batch.values()), None)
    if first is None or first.device.type != "cuda":
        return {k: v.float().cpu().numpy() for k, v in batch.items()}
    host = {}
    for k, v in batch.items():
        buf = torch.empty(v.shape, dtype=torch.float32, pin_memory=True)
        buf.copy_(v.float(), non_blocking=True)
        host[k] = buf
    torch.cuda.current_stream(first.device).synchronize()
    return {k: v.numpy() for k, v in host.items()}


def batch_len(batch) -> int:
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    if isinstance(batch, dict):
        return int(next(iter(batch.values())).shape[0])
    return len(batch)


def run_batches(module: torch.nn.Module, run: HookedRun, batches: Iterable, device: torch.device,
                deliver: Callable[[dict[str, torch.Tensor]], None], precision: str = "float32",
                on_batch: Callable[[int], None] | None = None) -> int:
    """Forward every batch once, delivering each batch's checked, reduced rows (device tensors);
    returns the rows seen. Exceptions from the model become ExtractionError (typed errors of ours
    pass through)."""
    autocast = (torch.autocast(device_type=device.type, dtype=PRECISIONS[precision])
                if PRECISIONS.get(precision) is not None else nullcontext())
    seen = 0
    module.eval()
    with torch.inference_mode():
        for batch in batches:
            n = batch_len(batch)
            if isinstance(batch, torch.Tensor):
                batch = batch.to(device, non_blocking=True)
            run.reset()
            with model_errors(), autocast:
                module(batch)
            deliver(run.collect(n))
            seen += n
            if on_batch is not None:
                on_batch(n)
    return seen


def stream(module: torch.nn.Module, layer_modules: dict[str, torch.nn.Module], rows: np.ndarray,
           make_batch: Callable[[np.ndarray], object], device: torch.device,
           deliver: Callable[[dict[str, torch.Tensor]], None], *, transform=None, precision: str = "float32",
           batch_size: int = 32, workers: int = 0, memory_budget: int | None = None,
           fixed_bytes: Callable[[dict[str, int]], int] | None = None, on_batch=None) -> int:
    """Stream the stimuli at `rows` (positions, in order) through the model in batches.

    With a `memory_budget`, the first stimulus runs alone to measure what one stimulus needs
    (its hooked outputs, raw and reduced, and its input), and the other batches are as large as
    the budget allows (at most `batch_size`); `fixed_bytes(widths)` adds what does not scale with
    the batch (write buffers).
    """
    rows = np.asarray(rows, dtype=np.int64)
    pin = device.type == "cuda"
    seen = 0
    with HookedRun(layer_modules, transform) as run:
        start = 0
        if memory_budget is not None and len(rows):
            first = make_batch(rows[:1])
            widths: dict[str, int] = {}

            def probe(batch, _deliver=deliver):
                widths.update({k: int(v.shape[1]) for k, v in batch.items()})
                _deliver(batch)

            seen += run_batches(module, run, [first], device, probe, precision, on_batch)
            per_image = 2 * sum(run.raw_bytes.values()) + _nbytes(first) * (workers + 2)
            fixed = fixed_bytes(widths) if fixed_bytes is not None else 0
            batch_size = batch_size_for(memory_budget, per_image, batch_size, fixed)
            start = 1
        rest = rows[start:]
        spans = [rest[i:i + batch_size] for i in range(0, len(rest), batch_size)]
        batches = prefetch(lambda i: make_batch(spans[i]), len(spans), workers, pin)
        seen += run_batches(module, run, batches, device, deliver, precision, on_batch)
    return seen


def _nbytes(batch) -> int:
    if isinstance(batch, torch.Tensor):
        return batch.numel() * batch.element_size() // max(1, batch.shape[0])
    return 0


def batch_size_for(budget: int | None, per_image: int, requested: int, fixed: int = 0) -> int:
    """The largest batch size <= `requested` whose working memory fits `budget`.

    `per_image`: bytes one stimulus needs during the forward pass (its hooked outputs twice,
    once raw and once being reduced, plus its input); MemoryBudgetError when not even one fits.
    """
    if budget is None:
        return requested
    room = budget - fixed
    if room < per_image:
        raise MemoryBudgetError(
            f"the memory budget is too small to extract even one stimulus at a time: it needs at least "
            f"{format_size_up(fixed + per_image)} (one stimulus's layer outputs and the write buffers); "
            "read fewer layers, pool or project them at extraction time (--readout pool=mean, "
            "--readout project=4096) or raise --memory-budget")
    return max(1, min(requested, room // per_image))


def fit_pca(module: torch.nn.Module, modules: dict[str, torch.nn.Module], stimuli, readout, make_batch,
            device: torch.device, common: dict, name: str) -> dict:
    """One streaming pass over the read-out's fitting set: a PCA per layer (`StreamingPCA`: exact
    up to 8,192 units, incremental beyond), fitted on the pooled / projected outputs."""
    from ..progress import progress_bar
    from .readout import StreamingPCA

    rows = readout.fit_rows(len(stimuli), stimuli.labels)
    dtype = torch.float64 if device.type == "cpu" else torch.float32
    pcas = {layer: StreamingPCA(readout.pca, dtype) for layer in modules}

    def deliver(batch):
        for layer, x in batch.items():
            pcas[layer].partial_fit(x)

    with progress_bar(len(rows), f"{name}: fitting PCA ({readout.pca} components, {len(rows)} stimuli)") as bar:
        stream(module, modules, rows, make_batch, device, deliver, transform=readout, on_batch=bar.advance, **common)
    return {layer: pca.finish() for layer, pca in pcas.items()}


def pca_transform(readout, pcas: dict) -> Callable[[str, torch.Tensor], torch.Tensor]:
    """The projection pass's hook transform: pool / project, then the fitted PCA (float32)."""
    def transform(layer: str, out: torch.Tensor) -> torch.Tensor:
        return pcas[layer].transform(readout(layer, out).float()).float()
    return transform
