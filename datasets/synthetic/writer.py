"""What every synthetic image set shares: its options read from keywords, one image rendered per index from its
own seeded generator, the images written and one COCO file with the options recorded in `info`."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tqdm import tqdm

from datasets.core.coco import categories_from_names, new_coco, save_coco
from datasets.core.errors import UserError
from datasets.core.images import write_image

# (generator, options) -> (image, each object's annotation fields: category_id, iscrowd, bbox, area, segmentation)
Render = Callable[[np.random.Generator, object], tuple[np.ndarray, list[dict]]]


def read_options(cls: type, opts: dict, command: str):
    """The options dataclass `cls` from keywords, checked; UserError naming the command for an unknown one."""
    try:
        options = cls(**opts)
    except TypeError as exc:
        raise UserError(f"unknown {command} option: {exc}")
    options.check()
    return options


def write_set(out_dir: str | os.PathLike, num_images: int, seed: int, options, render: Render, command: str,
              description: str, category_names: Sequence[str]) -> Path:
    """Render image i with np.random.default_rng([seed, i]) into out_dir/images/<i:06d>.<options.image_format>;
    write out_dir/annotations.json and return its path."""
    if num_images < 1:
        raise UserError(f"--num-images must be at least 1, got {num_images}")
    out_dir = Path(out_dir)
    size = options.image_size
    images, annotations = [], []
    for index in tqdm(range(num_images), desc=command, disable=None):
        image, objects = render(np.random.default_rng([seed, index]), options)
        file_name = f"{index:06d}.{options.image_format}"
        write_image(out_dir / "images" / file_name, image)
        images.append({"id": index + 1, "file_name": file_name, "width": size, "height": size})
        annotations += [{"id": len(annotations) + i + 1, "image_id": index + 1, **fields}
                        for i, fields in enumerate(objects)]
    info = {"description": f"{description} (python -m datasets {command})", "version": "1.0",
            "seed": seed, "options": dataclasses.asdict(options)}
    path = out_dir / "annotations.json"
    save_coco(path, new_coco(images, annotations, categories_from_names(category_names), info))
    return path
