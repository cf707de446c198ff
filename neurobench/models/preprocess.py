"""Image preprocessing for models, with an identity string that is part of every cache key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ImagePreprocess:
    """Resize the shorter side, centre-crop, scale to [0, 1], normalise per channel."""

    resize: int = 224
    crop: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"

    @property
    def identifier(self) -> str:
        return (
            f"rgb-resize{self.resize}-{self.interpolation}-crop{self.crop}"
            f"-mean{','.join(f'{m:g}' for m in self.mean)}-std{','.join(f'{s:g}' for s in self.std)}"
        )

    def _one(self, img: Image.Image) -> np.ndarray:
        resample = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}[self.interpolation]
        w, h = img.size
        scale = self.resize / min(w, h)
        nw, nh = max(self.crop, round(w * scale)), max(self.crop, round(h * scale))
        img = img.resize((nw, nh), resample)
        left, top = (nw - self.crop) // 2, (nh - self.crop) // 2
        img = img.crop((left, top, left + self.crop, top + self.crop))
        return np.asarray(img, dtype=np.float32) / 255.0

    def __call__(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """RGB PIL images -> float tensor (batch, 3, crop, crop)."""
        arr = np.stack([self._one(im) for im in images])
        x = torch.from_numpy(arr).permute(0, 3, 1, 2)
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        return (x - mean) / std


def imagenet_preprocess(resize: int = 224, crop: int = 224) -> ImagePreprocess:
    """The preprocessing torchvision ImageNet models were trained with (at evaluation size)."""
    return ImagePreprocess(resize=resize, crop=crop)
