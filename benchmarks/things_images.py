"""THINGS object images (Hebart et al. 2019, osf.io/jum2f), read lazily from the release archive.

The release is one zip (`images_THINGS.zip`, ~5 GB, 26,107 JPEGs under
`object_images/<concept>/<concept>_<nn><letter>.jpg`) encrypted with a password the authors
publish (`things4all`), so that the images are not scraped into web-image collections. Python's
zipfile decrypts ZipCrypto in pure Python (under 1 MB/s), so encrypted members are decrypted
once, checked against the archive's CRC-32 and kept under
`$NEUROBENCH_HOME/data/things_images/images_THINGS.zip.members/`; unencrypted archives (a mirror
that re-zipped the images) are read in place. Both THINGS benchmarks (fMRI and MEG) use
`load_things_stimuli`.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import io
import logging
import os
import threading
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import pandas as pd

from ..data.files import cache_path, load_manifest, recorded_digest, resolve
from ..data.stimuli import IMAGE_SUFFIXES, StimulusSet, open_image
from ..errors import NeurobenchError, StimulusError
from ..paths import inside

log = logging.getLogger(__name__)

DATASET = "things_images"
ARCHIVE = "images_THINGS.zip"
PASSWORD = b"things4all"  # published by the authors on osf.io/jum2f; ignored for unencrypted members

__all__ = ["ARCHIVE", "DATASET", "PASSWORD", "image_id", "load_things_stimuli"]


def image_id(name: str) -> str:
    """The THINGS image id: the file stem, whatever folder or suffix comes with it
    ('object_images/dog/dog_12s.jpg', 'dog_12s.jpg' and 'dog_12s' all give 'dog_12s')."""
    stem = PurePosixPath(str(name).replace("\\", "/")).name
    suffix = PurePosixPath(stem).suffix
    return stem[: -len(suffix)] if suffix.lower() in IMAGE_SUFFIXES else stem


@functools.lru_cache(maxsize=4)
def _index(archive: str, size: int, mtime_ns: int) -> dict[str, zipfile.ZipInfo]:
    """image id -> zip member, for one archive state (cached per path, size and mtime)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise NeurobenchError(f"cannot read {archive} as a zip archive ({exc}); is it the THINGS image archive?") from exc
    index: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        path = PurePosixPath(info.filename)
        if info.is_dir() or path.suffix.lower() not in IMAGE_SUFFIXES or "__MACOSX" in path.parts:
            continue
        index.setdefault(image_id(info.filename), info)
    if not index:
        raise NeurobenchError(f"{archive} holds no images; expected object_images/<concept>/<image>.jpg")
    return index


def archive_index(archive: Path) -> dict[str, zipfile.ZipInfo]:
    st = archive.stat()
    return _index(str(archive.resolve()), st.st_size, st.st_mtime_ns)


class ArchiveImages(Sequence):
    """Images of a zip archive in a given order, decoded only when indexed (PIL RGB images)."""

    def __init__(self, archive: Path, members: list[zipfile.ZipInfo], member_cache: Path):
        self.archive, self.members, self.member_cache = archive, members, member_cache
        self._zip: zipfile.ZipFile | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.members)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        info = self.members[i]
        return open_image(io.BytesIO(self.member_bytes(info)), image_id(info.filename), f"{self.archive}:{info.filename}")

    def _read(self, info: zipfile.ZipInfo) -> bytes:
        with self._lock:
            if self._zip is None:
                self._zip = zipfile.ZipFile(self.archive)
            try:
                return self._zip.read(info, pwd=PASSWORD)
            except RuntimeError as exc:  # wrong password
                raise NeurobenchError(f"{self.archive}: cannot decrypt {info.filename} ({exc})") from exc

    def member_bytes(self, info: zipfile.ZipInfo) -> bytes:
        """A member's bytes; encrypted members go through the decrypted-member cache."""
        if not info.flag_bits & 0x1:
            return self._read(info)
        cached = inside(self.member_cache, info.filename, f"{self.archive}: member")
        if cached.is_file():
            data = cached.read_bytes()
            if zlib.crc32(data) == info.CRC:
                return data
            log.warning("decrypted copy %s does not match the archive's CRC-32; decrypting again", cached)
        data = self._read(info)
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, cached)
        return data

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_zip"], state["_lock"] = None, None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()


def _member_cache() -> Path:
    """Decrypted members live under the cache, keyed by the archive's checksum."""
    spec = load_manifest(DATASET).file(ARCHIVE)
    key = spec.digest or recorded_digest(DATASET, ARCHIVE) or "unverified"
    return cache_path(DATASET, f"{ARCHIVE}.members") / str(key)[:16]


def _missing(wanted: list[str], index: dict[str, zipfile.ZipInfo], archive: Path) -> StimulusError:
    missing = [w for w in wanted if w not in index]
    near = difflib.get_close_matches(missing[0], list(index), n=3)
    return StimulusError(
        f"{len(missing)} of {len(wanted)} THINGS images are not in {archive} ({len(index)} images), e.g. "
        f"{missing[:5]}{f'; closest there: {near}' if near else ''}. Is the archive another release, or do the "
        "names come from another stimulus set?"
    )


def load_things_stimuli(image_names: Sequence[str], identifier: str) -> StimulusSet:
    """The named THINGS images, in the given order (repeats dropped), as a lazy StimulusSet.

    ids are the image file stems (e.g. 'aardvark_01b'); labels hold `concept` (the image's
    folder in the archive) and `image_file` (its path there). The content hash comes from the
    verified archive's per-member CRC-32 and size, so no image is decoded just to key a cache.
    """
    wanted = list(dict.fromkeys(image_id(n) for n in image_names))
    if not wanted:
        raise StimulusError(f"stimulus set {identifier!r}: no THINGS image names given")
    archive = resolve(DATASET, ARCHIVE)
    index = archive_index(archive)
    if any(w not in index for w in wanted):
        raise _missing(wanted, index, archive)
    members = [index[w] for w in wanted]
    concepts = [PurePosixPath(m.filename).parent.name or image_id(m.filename).rsplit("_", 1)[0] for m in members]
    labels = pd.DataFrame({"concept": concepts, "image_file": [m.filename for m in members]}, index=wanted)
    h = hashlib.sha256(b"image\0things-archive")
    for sid, m in zip(wanted, members):
        h.update(f"\0{sid}\0{m.CRC:08x}\0{m.file_size}".encode())
    images = ArchiveImages(archive, members, _member_cache())
    return StimulusSet(identifier, wanted, images=images, labels=labels, _hash=h.hexdigest())
