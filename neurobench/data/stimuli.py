"""StimulusSet: what was shown, in which order, with a content hash that keys every cache."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..errors import StimulusError
from ..ids import check_same_ids
from . import limits

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}

# 16-bit samples are scaled linearly to 8 bits: v * 255 / 65535, rounded to nearest.
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
SIXTEEN_BIT_MAX = 65535


def max_image_pixels() -> int:
    """NEUROBENCH_MAX_IMAGE_PIXELS (default Pillow's 89,478,485, a 9459 x 9459 image, ~268 MB as RGB):
    images with more pixels are refused before they are decoded (a decompression bomb: a small
    PNG that would decode to gigabytes)."""
    return limits.max_image_pixels(StimulusError)


def open_image(source, stimulus_id: str = "?", name: str | None = None) -> Image.Image:
    """Decode an image file (a path, or a binary file object) within the pixel limit.

    The size in the header is checked before any pixel is decoded; Pillow's own bomb warning and
    error become this StimulusError, which names the image, its size and the limit.
    """
    name = name or str(source)
    limit = max_image_pixels()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(source)
            pixels = image.width * image.height
            if pixels > limit:
                image.close()
                raise StimulusError(
                    f"stimulus {stimulus_id!r}: image {name} is {image.width} x {image.height} = {pixels:,} pixels, more "
                    f"than the limit of {limit:,} (NEUROBENCH_MAX_IMAGE_PIXELS): refused as a possible decompression "
                    "bomb. Raise the limit if the image is genuine.")
            image.load()
    except Image.DecompressionBombError as exc:
        raise StimulusError(f"stimulus {stimulus_id!r}: image {name} is refused as a possible decompression bomb "
                            f"({exc}); NEUROBENCH_MAX_IMAGE_PIXELS cannot raise Pillow's own hard limit") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise StimulusError(f"stimulus {stimulus_id!r}: cannot read image file {name}: {exc}") from exc
    return image


def to_rgb_image(item, stimulus_id: str = "?") -> Image.Image:
    """Any supported image as an 8-bit RGB PIL image.

    Accepted: a path (decoded by `open_image`, within the pixel limit), a PIL image, or an array
    HxW, HxWx1, HxWx3 or HxWx4 of uint8, uint16, bool or float in [0, 1]. Conventions, by sample type:

    - 8-bit: as it is;
    - 16-bit (uint16 arrays, 'I;16' images such as 16-bit PNGs and TIFFs): scaled to 8 bits,
      v * 255 / 65535 rounded to the nearest integer (exact integer arithmetic; no ties occur),
      never clipped;
    - 'I' images (32-bit integers, e.g. 'I' mode TIFFs): read as 16-bit samples when their values
      lie in 256..65535 at the top (how 16-bit data are stored in 32-bit images); an image whose
      largest value is 255 or less is ambiguous (8-bit data, or a nearly black 16-bit image?) and one
      with negative or larger values has no known white level: both are refused;
    - float ('F' images, float arrays): values in [0, 1] scaled to v * 255 rounded to nearest (ties
      to even); any value outside [0, 1], NaN or inf is refused;
    - bool: False black, True white.

    Grayscale is replicated to three channels; RGBA and palette images with transparency are
    composited over a white background, so transparent regions never turn black. What cannot be
    converted faithfully raises StimulusError naming the stimulus and what to do.
    """
    if isinstance(item, (str, Path)):
        item = open_image(item, stimulus_id)
    if isinstance(item, np.ndarray):
        item = _array_image(item, stimulus_id)
    if not isinstance(item, Image.Image):
        raise StimulusError(
            f"stimulus {stimulus_id!r}: expected a PIL image, an image array or a path, got {type(item).__name__}"
        )
    if item.mode in _SIXTEEN_BIT_MODES or item.mode in ("I", "F"):
        item = Image.fromarray(_to_uint8(np.asarray(item), item.mode, stimulus_id))
    if item.mode == "P":
        item = item.convert("RGBA")
    if item.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        background = Image.new("RGBA", item.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, item.convert("RGBA")).convert("RGB")
    if item.mode != "RGB":
        try:
            return item.convert("RGB")
        except ValueError as exc:
            raise StimulusError(f"stimulus {stimulus_id!r}: cannot convert a {item.mode!r} image to RGB ({exc}); "
                                "save it as RGB or grayscale") from exc
    return item


def _array_image(array: np.ndarray, stimulus_id: str) -> Image.Image:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise StimulusError(
            f"stimulus {stimulus_id!r}: image array must be HxW, HxWx1, HxWx3 or HxWx4, got shape {array.shape}"
        )
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.dtype == np.uint16:
        array = _to_uint8(array, "uint16", stimulus_id)
    elif array.dtype.kind == "f":
        array = _to_uint8(array, str(array.dtype), stimulus_id)
    elif array.dtype != np.uint8:
        raise StimulusError(
            f"stimulus {stimulus_id!r}: image arrays must be uint8 (0-255), uint16 (0-65535), bool or float in [0, 1]; "
            f"got {array.dtype}. Convert it with the range you mean, e.g. x.astype('uint8') for 0-255 values"
        )
    return Image.fromarray(np.ascontiguousarray(array))


def _to_uint8(values: np.ndarray, kind: str, stimulus_id: str) -> np.ndarray:
    """16-bit, 32-bit integer or float samples as uint8 by the conventions of `to_rgb_image`."""
    if kind == "F" or kind.startswith("float"):
        values = values.astype(np.float64)
        finite = np.isfinite(values)
        if not finite.all() or values.min(initial=0.0) < 0 or values.max(initial=0.0) > 1:
            shown = values[finite]
            found = f"{shown.min():g} to {shown.max():g}" if shown.size else "no finite value"
            raise StimulusError(
                f"stimulus {stimulus_id!r}: a float image must hold values in [0, 1], found {found}"
                f"{'' if finite.all() else ' and NaN or inf'}; rescale it to [0, 1] (or to uint8) with the range "
                "you mean")
        return np.round(values * 255).astype(np.uint8)  # to nearest, ties to even
    values = values.astype(np.int64)
    top = int(values.max(initial=0))
    if kind == "I" and (values.min(initial=0) < 0 or top > SIXTEEN_BIT_MAX or top <= 255):
        why = ("all values are 255 or less: 8-bit data stored as 32-bit integers, or a nearly black 16-bit image?"
               if 0 <= top <= 255 and values.min(initial=0) >= 0 else
               f"values run from {int(values.min(initial=0))} to {top}, outside the 16-bit range 0-65535")
        raise StimulusError(
            f"stimulus {stimulus_id!r}: a 32-bit integer ('I') image has no known white level ({why}). Convert it to "
            "8-bit ('L') or 16-bit ('I;16') with the scaling you mean")
    return ((values * 255 + SIXTEEN_BIT_MAX // 2) // SIXTEEN_BIT_MAX).astype(np.uint8)  # exact: to nearest


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
