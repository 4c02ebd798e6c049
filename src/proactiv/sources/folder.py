"""A folder of class folders as a source: ``ROOT/<class>/<file>``, images or WAV clips.

The layout of torchvision's ``ImageFolder`` and of Speech Commands. The class names are the sorted names of the
folders under the root (label i is the i-th); files in a class folder's subfolders belong to it too; folders
and files whose names start with ``_`` or ``.`` are skipped (Speech Commands' ``_background_noise_``, hidden
files), and so are files of other extensions than the ones read. The instances are the files sorted by their
path under the root. How a file becomes an input is :mod:`proactiv.sources.media`'s.

Speech Commands splits its clips by the lists ``validation_list.txt`` and ``testing_list.txt`` at the root
(paths ``word/file.wav``; every other clip is training data): ``split="train"``, ``"validation"`` or ``"test"``
(the names of the keyword task's loader) selects one. The metadata is the file's path under the root
(``meta.path``) and, when every file name has the Speech Commands form ``<speaker>_nohash_<n>.wav``, its speaker
(``meta.speaker``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from proactiv.sources.base import Source
from proactiv.sources.media import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS, Clips, Images, read_wav

SPLITS = ("train", "validation", "test")
#: the lists of Speech Commands that name the clips of a split (the others are training clips)
SPLIT_LISTS = {"validation": "validation_list.txt", "test": "testing_list.txt"}
SPEAKER_MARK = "_nohash_"


class FolderSource(Source):
    """The files of class folders under ``root`` (see the module docstring for the layout).

    Parameters
    ----------
    root : the folder that holds one folder per class.
    kind : "image", "audio", or "auto": decided by the extensions of the files found.
    size : images: (height, width) every image is resized to (one int: square); without it every image must
        have the size of the first.
    mode : images: "RGB" (inputs (3, H, W)) or "L" (one gray channel, (1, H, W)); values in [0, 1].
    sample_rate : audio: the rate of every clip (default: the first clip's); clips are not resampled.
    seconds : audio: the duration every clip is padded with zeros or cut to; without it every clip must have
        the length of the first.
    split : Speech Commands: "train", "validation" or "test", chosen by the root's lists; None: every file.
    extensions : the file endings read (default: the kind's image or WAV endings).
    """

    def __init__(self, root: str | os.PathLike, kind: str = "auto", size: int | tuple[int, int] | None = None,
                 sample_rate: int | None = None, seconds: float | None = None, split: str | None = None,
                 extensions: tuple[str, ...] | None = None, mode: str = "RGB"):  # fmt: skip
        super().__init__()
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"{root}: no such folder (expected one folder per class: ROOT/<class>/<file>)"
            )
        if kind not in ("auto", "image", "audio"):
            raise ValueError(f"kind={kind!r}: expected 'auto', 'image' or 'audio'")
        if split is not None and split not in SPLITS:
            raise ValueError(f"split={split!r}: expected one of {', '.join(SPLITS)}, or None for every file")
        self.split = split
        by_class = _class_files(self.root)
        self.kind = kind if kind != "auto" else _kind_of(self.root, by_class, extensions)
        defaults = IMAGE_EXTENSIONS if self.kind == "image" else AUDIO_EXTENSIONS
        self.extensions = tuple(e.lower() for e in (extensions or defaults))
        self.class_names = sorted(by_class)
        files, targets = [], []
        for label, name in enumerate(self.class_names):
            kept = [f for f in by_class[name] if Path(f).suffix.lower() in self.extensions]
            if not kept:
                found = sorted({Path(f).suffix or "(none)" for f in by_class[name]})
                raise ValueError(
                    f"{self.root / name}: no {'/'.join(self.extensions)} file in this class folder"
                    + (f" (found {', '.join(found)})" if found else " (it is empty)")
                )
            files += kept
            targets += [label] * len(kept)
        chosen = _in_split(self.root, files, split)
        self.files = [files[i] for i in chosen]
        self.targets = np.asarray(targets, dtype=np.int64)[chosen]
        if not self.files:
            raise ValueError(f"{self.root}: no file in the {split} split")
        if self.kind == "image":
            self.media = Images(size, mode)
        else:
            rate = (
                sample_rate
                if sample_rate is not None
                else read_wav(self.root / self.files[0], self.files[0])[1]
            )
            self.media = Clips(rate, seconds)
        self.input_kind = self.media.input_kind
        self.sample_rate, self.pixel_range = self.media.sample_rate, self.media.pixel_range
        self.speakers = all(SPEAKER_MARK in Path(f).name for f in self.files)

    def describe(self) -> dict:
        return {"kind": "folder", "path": str(self.root), "media": self.kind, "split": self.split,
                "extensions": list(self.extensions), **self.media.describe()}  # fmt: skip

    def known_length(self) -> int:
        return len(self.files)

    def where(self, i: int | None) -> str:
        return super().where(i) + (f" ({self.files[i]})" if i is not None else "")

    def _items(self, ids):
        read = self.media.reader()
        for i in range(len(self.files)) if ids is None else ids:
            path = self.files[i]
            meta = {"path": path}
            if self.speakers:
                meta["speaker"] = Path(path).name.split(SPEAKER_MARK)[0]
            yield i, read(self.root / path, str(self.root / path)), int(self.targets[i]), meta


def _class_files(root: Path) -> dict[str, list[str]]:
    """Class folder name → the paths (``class/…/file``, sorted) of the files under it, hidden ones left out."""
    classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(("_", ".")))
    if not classes:
        raise ValueError(
            f"{root}: no class folders (expected ROOT/<class>/<file>; folders starting with _ or . are skipped)"
        )
    return {
        folder.name: sorted(
            p.relative_to(root).as_posix()
            for p in folder.rglob("*")
            if p.is_file() and not any(part.startswith(("_", ".")) for part in p.relative_to(root).parts)
        )
        for folder in classes
    }


def _kind_of(root: Path, by_class: dict[str, list[str]], extensions) -> str:
    """Images or audio, by the extensions read or found."""
    found = {Path(f).suffix.lower() for files in by_class.values() for f in files}
    if extensions is not None:
        found = {e.lower() for e in extensions}
    images, audio = found & set(IMAGE_EXTENSIONS), found & set(AUDIO_EXTENSIONS)
    if images and audio:
        raise ValueError(f"{root}: both images ({', '.join(sorted(images))}) and WAV clips; pass kind=")
    if not images and not audio:
        raise ValueError(
            f"{root}: no image ({', '.join(IMAGE_EXTENSIONS)}) or WAV file in the class folders"
            + (
                f" (found {', '.join(sorted(found))}; other audio formats need converting to WAV)"
                if found
                else ""
            )
        )
    return "image" if images else "audio"


def _in_split(root: Path, files: list[str], split: str | None) -> list[int]:
    """Positions of ``files`` in the Speech Commands ``split`` (all of them for None)."""
    if split is None:
        return list(range(len(files)))
    listed = {}
    for name, list_file in SPLIT_LISTS.items():
        path = root / list_file
        if path.exists():
            listed[name] = set(path.read_text().split())
        elif split in ("train", name):
            raise ValueError(
                f"{path}: missing, so the {name} split is unknown; pass split=None for every file"
            )
    if split == "train":
        return [i for i, f in enumerate(files) if not any(f in names for names in listed.values())]
    return [i for i, f in enumerate(files) if f in listed[split]]
