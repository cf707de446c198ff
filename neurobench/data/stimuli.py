"""StimulusSet: what was shown, in which order, with a content hash that keys every cache."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..errors import StimulusError
from ..ids import check_same_ids

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def to_rgb_image(item, stimulus_id: str = "?") -> Image.Image:
    """Any supported image (PIL, or uint8 array HxW, HxWx1, HxWx3, HxWx4) as an RGB PIL image.

    Grayscale is replicated to three channels; RGBA and palette images with transparency are
    composited over a white background, so transparent regions never turn black.
    """
    if isinstance(item, (str, Path)):
        try:
            item = Image.open(item)
            item.load()
        except (OSError, ValueError) as exc:
            raise StimulusError(f"stimulus {stimulus_id!r}: cannot read image file {item}: {exc}") from exc
    if isinstance(item, np.ndarray):
        if item.dtype != np.uint8:
            raise StimulusError(
                f"stimulus {stimulus_id!r}: image arrays must be uint8 (0-255), got {item.dtype}; "
                "convert with (x * 255).round().astype('uint8') if it is in [0, 1]"
            )
        if item.ndim == 3 and item.shape[2] == 1:
            item = item[:, :, 0]
        if item.ndim not in (2, 3) or (item.ndim == 3 and item.shape[2] not in (3, 4)):
            raise StimulusError(
                f"stimulus {stimulus_id!r}: image array must be HxW, HxWx1, HxWx3 or HxWx4, got shape {item.shape}"
            )
        item = Image.fromarray(item)
    if not isinstance(item, Image.Image):
        raise StimulusError(
            f"stimulus {stimulus_id!r}: expected a PIL image, a uint8 array or a path, got {type(item).__name__}"
        )
    if item.mode == "P":
        item = item.convert("RGBA")
    if item.mode in ("RGBA", "LA"):
        background = Image.new("RGBA", item.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, item.convert("RGBA")).convert("RGB")
    if item.mode != "RGB":
        return item.convert("RGB")
    return item


@dataclass
class StimulusSet:
    """Ordered stimuli (images or texts) with ids and per-stimulus labels.

    The order here is the row order of every activation matrix; alignment with neural data is
    always checked by id, never assumed by position.
    """

    identifier: str
    ids: list[str]
    images: list | None = None
    texts: list[str] | None = None
    labels: pd.DataFrame = field(default_factory=pd.DataFrame)
    _hash: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        self.ids = [str(i) for i in self.ids]
        if len(set(self.ids)) != len(self.ids):
            raise StimulusError(f"stimulus set {self.identifier!r}: stimulus ids must be unique")
        if (self.images is None) == (self.texts is None):
            raise StimulusError(f"stimulus set {self.identifier!r}: give exactly one of images or texts")
        items = self.images if self.images is not None else self.texts
        if len(items) != len(self.ids):
            raise StimulusError(
                f"stimulus set {self.identifier!r}: {len(self.ids)} ids but {len(items)} stimuli"
            )
        if len(self.labels) and list(map(str, self.labels.index)) != self.ids:
            raise StimulusError(f"stimulus set {self.identifier!r}: labels must be indexed by the stimulus ids, in order")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def modality(self) -> str:
        return "image" if self.images is not None else "text"

    def content_hash(self) -> str:
        """sha256 over ids and stimulus content: two sets with equal hashes show the same things."""
        if self._hash is None:
            h = hashlib.sha256(self.modality.encode())
            for i, sid in enumerate(self.ids):
                h.update(b"\0id" + sid.encode())
                if self.images is not None:
                    img = to_rgb_image(self.images[i], sid)
                    h.update(f"{img.size}".encode())
                    h.update(img.tobytes())
                else:
                    h.update(self.texts[i].encode())
            if "context" in self.labels:  # text read in context is a different stimulus
                for c in self.labels["context"]:
                    h.update(b"\0ctx" + str(c).encode())
            self._hash = h.hexdigest()
        return self._hash

    def rgb_images(self, indices: Sequence[int] | None = None) -> list[Image.Image]:
        if self.images is None:
            raise StimulusError(f"stimulus set {self.identifier!r} holds text, not images")
        idx = range(len(self)) if indices is None else indices
        return [to_rgb_image(self.images[i], self.ids[i]) for i in idx]

    def check_aligned(self, ids: Sequence[str], what: str = "neural data") -> None:
        """Raise AlignmentError unless `ids` are exactly this set's ids in this order."""
        check_same_ids(self.ids, ids, f"stimulus set {self.identifier!r}", what)

    @classmethod
    def from_folder(cls, path: str | Path, identifier: str | None = None) -> StimulusSet:
        """Images in a folder, sorted by name; a sub-folder name becomes the `category` label."""
        root = Path(path)
        if not root.is_dir():
            raise StimulusError(f"stimulus folder {root} does not exist")
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise StimulusError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found under {root}")
        ids = [str(p.relative_to(root)) for p in files]
        cats = [p.parent.name if p.parent != root else "" for p in files]
        labels = pd.DataFrame({"category": cats}, index=ids) if any(cats) else pd.DataFrame()
        return cls(identifier or root.name, ids, images=[str(p) for p in files], labels=labels)
