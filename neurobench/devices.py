"""Device and dtype resolution shared by every numeric core."""

from __future__ import annotations

import torch

from .errors import InvalidInputError

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


DEVICE_TYPES = ("cpu", "cuda", "mps")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """`auto` picks cuda > mps > cpu; otherwise 'cpu', 'cuda', 'cuda:N' or 'mps', checked: an
    unknown name, or a device this machine does not have, raises InvalidInputError saying what
    it has. A torch.device is returned as it is (it was resolved already)."""
    if isinstance(device, torch.device):
        return device
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    here = f"this machine has: {', '.join(available_devices())}"
    if not isinstance(device, str):
        raise InvalidInputError(f"device must be a name like 'cpu', 'cuda', 'cuda:1', 'mps' or 'auto', got "
                                f"{type(device).__name__}")
    try:
        dev = torch.device(device.strip())
    except (RuntimeError, ValueError, TypeError):
        dev = None
    if dev is None or dev.type not in DEVICE_TYPES:
        raise InvalidInputError(f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps ({here})")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidInputError(f"device {device!r} was asked for but CUDA is not available here; use --device cpu "
                                    f"or auto ({here})")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InvalidInputError(f"device {device!r}: there is no CUDA device {dev.index} ({here})")
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise InvalidInputError(f"device {device!r} was asked for but Apple's MPS is not available here; use "
                                    f"--device cpu or auto ({here})")
    return dev


def available_devices() -> list[str]:
    """The device names this machine can use: cpu, each cuda:N, mps."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names


def resolve_dtype(dtype: str | torch.dtype | None = "float32") -> torch.dtype:
    """float32 by default; float64 for validation against references."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None:
        return torch.float32
    try:
        return _DTYPES[dtype]
    except KeyError:
        raise InvalidInputError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}") from None


def available_memory_bytes(device: torch.device) -> int:
    """Free memory on the device (GPU: cudaMemGetInfo; CPU: MemAvailable)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 * 1024**3
