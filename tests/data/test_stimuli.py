import numpy as np
import pytest
from PIL import Image

from neurobench.data.stimuli import StimulusSet, to_rgb_image
from neurobench.errors import AlignmentError, StimulusError
from neurobench.models.preprocess import imagenet_preprocess


def _images():
    rng = np.random.default_rng(0)
    return [
        rng.integers(0, 255, (50, 80, 3), dtype=np.uint8),  # RGB, not square
        rng.integers(0, 255, (300, 200), dtype=np.uint8),  # grayscale
        rng.integers(0, 255, (64, 64, 1), dtype=np.uint8),  # grayscale, channel axis
        rng.integers(0, 255, (40, 40, 4), dtype=np.uint8),  # RGBA
        Image.new("P", (30, 30)),  # palette
        Image.new("L", (500, 20)),  # extreme aspect ratio
    ]


def test_any_size_and_mode_becomes_a_model_batch():
    stim = StimulusSet("mixed", [f"s{i}" for i in range(6)], images=_images())
    batch = imagenet_preprocess()(stim.rgb_images())
    assert batch.shape == (6, 3, 224, 224)
    assert np.isfinite(batch.numpy()).all()


def test_rgba_is_composited_on_white():
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)  # fully transparent black
    assert np.asarray(to_rgb_image(rgba)).min() == 255


def test_bad_images_are_named():
    with pytest.raises(StimulusError, match="uint8"):
        to_rgb_image(np.zeros((4, 4, 3), dtype=np.int32), "img7")
    with pytest.raises(StimulusError, match=r"img9.*\[0, 1\], found 0 to 2"):
        to_rgb_image(np.linspace(0, 2, 48, dtype=np.float32).reshape(4, 4, 3), "img9")
    with pytest.raises(StimulusError, match="img8"):
        to_rgb_image(np.zeros((4, 4, 2), dtype=np.uint8), "img8")
    with pytest.raises(StimulusError, match="cannot read"):
        to_rgb_image("/nonexistent.png")


def test_content_hash_tracks_content_and_order():
    imgs = _images()[:3]
    a = StimulusSet("a", ["x", "y", "z"], images=imgs)
    b = StimulusSet("b", ["x", "y", "z"], images=[im.copy() for im in imgs])
    c = StimulusSet("c", ["x", "y", "z"], images=[imgs[0], imgs[1], imgs[2] // 2])
    assert a.content_hash() == b.content_hash() != c.content_hash()


def test_alignment_checks():
    s = StimulusSet("s", ["a", "b", "c"], texts=["1", "2", "3"])
    s.check_aligned(["a", "b", "c"])
    with pytest.raises(AlignmentError, match="another order"):
        s.check_aligned(["b", "a", "c"])
    with pytest.raises(AlignmentError, match="different stimuli"):
        s.check_aligned(["a", "b", "d"])


def test_duplicate_ids_rejected():
    with pytest.raises(StimulusError, match="unique"):
        StimulusSet("s", ["a", "a"], texts=["1", "2"])


def test_from_folder_labels_by_subfolder(tmp_path):
    for cat in ("faces", "houses"):
        (tmp_path / cat).mkdir()
        for i in range(2):
            Image.new("RGB", (10, 10), (i, 0, 0)).save(tmp_path / cat / f"{i}.png")
    s = StimulusSet.from_folder(tmp_path)
    assert len(s) == 4 and list(s.labels["category"]) == ["faces", "faces", "houses", "houses"]
