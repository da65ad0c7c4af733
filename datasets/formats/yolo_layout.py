"""The Ultralytics dataset layout: images/<split>/ beside labels/<split>/, and the data.yaml naming them.

Ultralytics finds an image's label by replacing the last /images/ in its path with /labels/.
"""
from __future__ import annotations

import os
from pathlib import Path

import yaml

from datasets.core.errors import UserError
from datasets.core.images import IMAGE_SUFFIXES, list_images

SPLITS = ("train", "val", "test")
YAML_NAMES = ("data.yaml", "data.yml")


def label_path(image: Path) -> Path:
    """Ultralytics' label file of an image: the last `images` folder in the path becomes `labels`, suffix .txt."""
    parts = list(image.parts)
    folders = [i for i, part in enumerate(parts[:-1]) if part == "images"]
    if folders:
        parts[folders[-1]] = "labels"
    return Path(*parts).with_suffix(".txt")


def data_yaml_text(out: Path, splits: list[str], names: list[str]) -> str:
    """data.yaml for an export in `out`: `path` absolute, splits relative to `path`.

    Ultralytics would resolve a relative `path` against its working folder, so only an absolute one works
    from anywhere; a missing val split (or train) points at the first split's images, since Ultralytics
    requires both. A moved export is still read by `convert`, which looks in the yaml's own folder first.
    """
    spec: dict = {"path": Path(os.path.abspath(out)).as_posix()}
    for name in SPLITS:
        if name in splits or name != "test":
            spec[name] = f"images/{name if name in splits else splits[0]}"
    spec["nc"] = len(names)
    spec["names"] = dict(enumerate(names))
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)


def find_data_yaml(root: Path) -> Path | None:
    """data.yaml (or data.yml) in a dataset root, or None."""
    return next((root / name for name in YAML_NAMES if (root / name).is_file()), None)


def read_yaml(path: Path) -> dict:
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot parse: {str(exc).splitlines()[0]}")
    if not isinstance(spec, dict):
        raise UserError(f"{path}: expected a YAML mapping with train/val/test and names")
    return spec


def yaml_roots(spec: dict, yaml_path: Path) -> list[Path]:
    """Folders the split entries may be relative to: the yaml's own folder, then `path` as Ultralytics reads it.

    The yaml's folder comes first, so a copied or moved dataset is read where it is now.
    """
    here = yaml_path.parent
    path = Path(str(spec.get("path") or "."))
    candidates = [here, path] if path.is_absolute() else [here, here / path, Path.cwd() / path]
    return list(dict.fromkeys(Path(os.path.normpath(c)) for c in candidates))


def split_entries(spec: dict, yaml_path: Path) -> dict[str, str]:
    """train/val/test entries of a data.yaml; UserError for forms this reader does not take."""
    entries = {name: spec[name] for name in SPLITS if spec.get(name)}
    for name, entry in entries.items():
        if not isinstance(entry, str):
            raise UserError(f"{yaml_path}: {name}: give one images folder (lists of folders are not supported)")
        if entry.endswith(".txt"):
            raise UserError(f"{yaml_path}: {name}: {entry} is an image list; point {name} at an images folder")
    if not entries:
        raise UserError(f"{yaml_path}: names no train, val or test images folder")
    return entries


def entry_folder(root: Path, entry: str) -> Path | None:
    """The folder an entry names under `root` (a leading ../ may be dropped, as Ultralytics does), or None."""
    for tried in [entry, entry[3:]] if entry.startswith("../") else [entry]:
        if (root / tried).is_dir():
            return Path(os.path.normpath(root / tried))
    return None


def yaml_splits(yaml_path: Path) -> list[tuple[str, Path]]:
    """(split, images folder) for train/val/test of a data.yaml, all under one root.

    A folder named by two splits counts once.
    """
    spec = read_yaml(yaml_path)
    entries = split_entries(spec, yaml_path)
    roots = yaml_roots(spec, yaml_path)
    for root in roots:
        folders = {name: entry_folder(root, entry) for name, entry in entries.items()}
        if any(folders.values()):  # the first root with any split must hold them all: splits never mix roots
            missing = [f"{name}: {entries[name]}" for name, folder in folders.items() if folder is None]
            if missing:
                raise UserError(f"{yaml_path}: no folder for {', '.join(missing)} under {root}")
            splits: list[tuple[str, Path]] = []
            for name, folder in folders.items():
                if folder not in [seen for _, seen in splits]:
                    splits.append((name, folder))
            return splits
    looked = ", ".join(map(str, roots))
    raise UserError(f"{yaml_path}: no folder for {', '.join(entries.values())} (looked under {looked})")


def folder_splits(root: Path) -> list[tuple[str, Path]]:
    """(split, images folder) from ROOT/images: its subfolders when it holds no images itself, else itself."""
    images = root / "images"
    if not images.is_dir():
        raise UserError(f"--src {root}: no data.yaml and no images/ folder; "
                        "for a folder of labels alone, give --images")
    if any(p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES for p in images.iterdir()):
        return [("all", images)]
    splits = [(sub.name, sub) for sub in sorted(images.iterdir()) if sub.is_dir() and list_images(sub)]
    if not splits:
        raise UserError(f"--src {root}: no images under {images}")
    return splits


def read_layout(root: Path) -> list[tuple[str, Path]]:
    """(split, images folder) of a dataset root: from its data.yaml, else from its images/ folder."""
    yaml_path = find_data_yaml(root)
    if yaml_path is not None and any(read_yaml(yaml_path).get(name) for name in SPLITS):
        return yaml_splits(yaml_path)
    return folder_splits(root)
