"""Device and dtype resolution shared by every numeric core."""

from __future__ import annotations

import torch

from .errors import InvalidInputError

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """`auto` picks cuda > mps > cpu; anything else is passed to torch.device."""
    if isinstance(device, torch.device):
        return device
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(
            f"device {device!r} was asked for but CUDA is not available here; use --device cpu or auto"
        )
    return dev


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
