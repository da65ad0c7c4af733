"""Command line of the datasets package: one subcommand per module, imported on use.

Bad input ends with `error: ...` on stderr and exit status 1; a wrong flag with the usage and status 2 (argparse).
"""
from __future__ import annotations

import argparse
import importlib

from datasets.core.errors import UserError, cli_main


def add_synth(sub) -> None:
    p = sub.add_parser("synth", help="render a synthetic shapes dataset (COCO with masks)")
    p.add_argument("--out", required=True, help="output folder: images/ and annotations.json")
    p.add_argument("--num-images", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-size", type=int, default=128, help="square side in pixels (default 128)")
    p.add_argument("--min-size", type=int, default=16, help="smallest object extent (default 16)")
    p.add_argument("--max-size", type=int, default=56, help="largest object extent (default 56)")
    p.add_argument("--max-objects", type=int, default=4, help="objects per image: 1..N (5%% of images get none)")
    p.add_argument("--crowd-fraction", type=float, default=0.0,
                   help="fraction of images that get one iscrowd=1 cluster of tiny shapes (default 0)")
    p.add_argument("--imbalance", type=float, default=1.0,
                   help="count ratio of the commonest to the rarest class: circle > square > triangle (default 1)")
    p.add_argument("--occlusion", action="store_true",
                   help="let later shapes cover earlier ones; the visible mask is annotated")
    p.add_argument("--format", choices=["png", "jpg"], default="png")


def add_glyphs(sub) -> None:
    p = sub.add_parser("glyphs", help="render a harder synthetic set: digits 0-9 on clutter (COCO with masks)",
                       description="The digits 0..9 (categories '0'..'9', ids 1..10) in OpenCV's Hershey fonts, "
                       "italic or not, of random stroke and colour, rotated, on gradient or noise backgrounds with "
                       "unannotated lines, circles, rectangles, blurred blobs and non-digit characters. Boxes are "
                       "the tight boxes of the glyphs' masks. Deterministic by seed.")
    p.add_argument("--out", required=True, help="output folder: images/ and annotations.json")
    p.add_argument("--num-images", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-size", type=int, default=320, help="square side in pixels (default 320)")
    p.add_argument("--min-size", type=int, default=12, help="smallest glyph height before rotation (default 12)")
    p.add_argument("--max-size", type=int, default=64,
                   help="largest glyph height (default 64); heights are log-uniform, so small ones are common")
    p.add_argument("--min-objects", type=int, default=2, help="fewest digits per image (default 2)")
    p.add_argument("--max-objects", type=int, default=12,
                   help="most digits per image (default 12; fewer where no free place is found)")
    p.add_argument("--max-angle", type=float, default=30.0,
                   help="rotate each glyph within +-this many degrees (default 30, at most 60)")
    p.add_argument("--max-distractors", type=int, default=6,
                   help="unannotated non-digit characters per image: 0..N (default 6)")
    p.add_argument("--clutter", type=float, default=1.0,
                   help="how many lines, circles, rectangles and blobs, relative to the default (1; 0: none)")
    p.add_argument("--degrade", type=float, default=0.3,
                   help="chance of each of mild blur, sensor noise and a JPEG round trip per image (default 0.3)")
    p.add_argument("--format", choices=["png", "jpg"], default="png")


def add_from_masks(sub) -> None:
    p = sub.add_parser("from-masks", help="instance masks (label images or one file per instance) to COCO",
                       description="Two mask conventions, both accepted: MASKS/<image-stem>.png label images "
                       "(0 = background, each other value one instance; classes from --category or --categories) "
                       "and MASKS/<image-stem>_<category>_<n>.png binary masks, one per instance. --categories is "
                       'JSON: {"names": [id order], "labels": {"<image-stem>" or "*": {"<value>" or "*": "<name>"}}}; '
                       'a "*" value means every value not listed.')
    p.add_argument("--images", required=True, help="folder of images")
    p.add_argument("--masks", required=True, help="folder of mask files")
    p.add_argument("--out", required=True, help="COCO json to write")
    classes = p.add_mutually_exclusive_group()
    classes.add_argument("--category", metavar="NAME", help="one class for every instance of the label images")
    classes.add_argument("--categories", help="JSON: category names and label-image value mapping")


def add_convert(sub) -> None:
    p = sub.add_parser("convert", help="VOC XML, YOLO txt, LabelMe JSON or CSV to COCO",
                       description="CSV needs the header file_name,x1,y1,x2,y2,category (absolute pixel corners; "
                       "a row with only file_name is an image without objects). YOLO needs class names: "
                       "--classes, or data.yaml / classes.txt in or next to the labels folder. A YOLO dataset "
                       "root (data.yaml, or images/ and labels/ folders) given without --images becomes one "
                       "COCO file per split, OUT/<split>.json when it has several.")
    p.add_argument("--from", dest="fmt", required=True, choices=["voc", "yolo", "labelme", "csv"])
    p.add_argument("--src", required=True,
                   help="labels folder (voc, yolo, labelme), YOLO dataset root, or file (csv, one xml/json)")
    p.add_argument("--images", help="folder of images (optional only for a YOLO dataset root)")
    p.add_argument("--out", required=True, help="COCO json to write; a folder for a YOLO root with several splits")
    p.add_argument("--classes", help="class names in id order: .txt (one a line), .yaml (names:) or .json")
    p.add_argument("--difficult", choices=["keep", "crowd", "skip"],
                   help="voc: difficult objects stay ordinary (keep), become iscrowd=1 so COCOeval ignores "
                   "them (crowd, the default) or are left out (skip)")


def add_export(sub) -> None:
    p = sub.add_parser("export", help="COCO to the Ultralytics YOLO layout or a Pascal VOC folder, images included",
                       description="yolo: OUT/images/<split>/, OUT/labels/<split>/, OUT/data.yaml (absolute path, "
                       "so Ultralytics reads it from any working folder) and OUT/classes.txt. voc: OUT/Annotations/, "
                       "OUT/JPEGImages/ (non-JPEG images re-encoded), OUT/ImageSets/Main/<split>.txt. Images are "
                       "hard-linked where the filesystem allows (a link shares the file), else copied.")
    p.add_argument("--to", required=True, choices=["yolo", "voc"])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--annotations", help="one COCO json, exported as the train split")
    source.add_argument("--split", action="append", metavar="NAME=FILE[:IMAGES]",
                        help="a COCO json as split NAME (train, val or test), its file names relative to the "
                        "folder IMAGES (default: --images); repeat for each split")
    p.add_argument("--images", help="folder the json files' file names are relative to, for every split that "
                   "names no folder of its own")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--segments", action="store_true",
                   help="yolo: write each instance's mask as a YOLO-seg polygon line instead of a box")
    p.add_argument("--copy-images", action="store_true", help="copy the images instead of hard-linking them")


def add_validate(sub) -> None:
    p = sub.add_parser("validate", help="check a COCO file (and its images); --fix writes a repaired copy",
                       description="Exit 0 when there are no problems, 1 otherwise. With --fix OUT, the exit "
                       "status tells whether the repaired copy is clean.")
    p.add_argument("file", help="COCO json")
    p.add_argument("--images", help="folder of images: check files exist and their sizes match")
    p.add_argument("--fix", metavar="OUT", help="write a repaired copy (clip boxes, recompute areas, re-index ids, drop empties)")


def add_split(sub) -> None:
    p = sub.add_parser("split", help="stratified train/val(/test) split")
    p.add_argument("file", help="COCO json")
    p.add_argument("--out", required=True, help="folder for train.json, val.json (test.json)")
    p.add_argument("--val", type=float, default=0.2, help="fraction of images for val (default 0.2)")
    p.add_argument("--test", type=float, default=0.0, help="fraction of images for test (default 0: no test split)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--group-by", metavar="FIELD",
                   help="keep images with the same value of this image field in one split, e.g. source (the "
                   "photo `tile` cut them from); an image without the field is a group of its own")


def add_merge(sub) -> None:
    p = sub.add_parser("merge", help="merge COCO files (categories unified by name, ids re-indexed)")
    p.add_argument("files", nargs="+", help="two or more COCO json files")
    p.add_argument("--out", required=True, help="COCO json to write")


def add_tile(sub) -> None:
    p = sub.add_parser("tile", help="cut large images into overlapping tiles with their annotations")
    p.add_argument("file", help="COCO json")
    p.add_argument("--images", required=True, help="folder of images")
    p.add_argument("--size", type=int, required=True, help="tile side in pixels")
    p.add_argument("--overlap", type=float, default=0.2, help="fraction of a tile shared with the next (default 0.2)")
    p.add_argument("--out", required=True, help="folder: images/ and annotations.json")
    p.add_argument("--min-visibility", type=float, default=0.5,
                   help="keep a box in a tile when at least this fraction of it is inside (default 0.5)")


def add_stats(sub) -> None:
    p = sub.add_parser("stats", help="counts per class, box sizes, objects per image; optional plot")
    p.add_argument("file", help="COCO json")
    p.add_argument("--plot", metavar="PNG", help="write an overview figure")
    p.add_argument("--json", action="store_true", help="print the numbers as one JSON line")


def add_draw(sub) -> None:
    p = sub.add_parser("draw", help="draw boxes, masks and labels onto images")
    p.add_argument("file", help="COCO json")
    p.add_argument("--images", required=True, help="folder of images")
    p.add_argument("--out", required=True, help="folder for the drawn images (.jpg, or .png with --format png)")
    p.add_argument("--limit", type=int, default=20, help="draw the first N images (default 20)")
    p.add_argument("--max-side", type=int, default=2048,
                   help="shrink a drawn image so its longer side is at most this many pixels (default 2048; "
                   "0: full size)")
    p.add_argument("--format", choices=["jpg", "png"], default="jpg", help="file format of the drawn images "
                   "(default jpg; png is lossless but several times larger)")


def add_anchors(sub) -> None:
    p = sub.add_parser("anchors", help="k-means (IoU distance) anchors for YOLO from a COCO file's boxes")
    p.add_argument("file", help="COCO json (the training split)")
    p.add_argument("--k", type=int, default=9, help="number of anchors (default 9)")
    p.add_argument("--input-size", type=int, default=320, help="the model's input size S: boxes are "
                   "letterboxed to it (default 320)")
    p.add_argument("--levels", type=int, default=3, help="maps the anchors are split over (default 3)")
    p.add_argument("--seed", type=int, default=0)


def add_audit(sub) -> None:
    p = sub.add_parser("audit", help="near-duplicates and leaks across splits, class balance, box sizes",
                       description="Hashes every image (a DCT perceptual hash, confirmed by a colour thumbnail) so "
                       "that re-encoded, resized or slightly cropped copies are found; near-duplicates in two splits "
                       "are leaks and are listed first. Per class: instances, images, COCO size ranges, aspect "
                       "ratios. Unreadable images are listed, not fatal.")
    p.add_argument("--split", action="append", required=True, metavar="NAME=FILE",
                   help="a COCO json as split NAME; repeat for each split (e.g. train=train.json val=val.json)")
    p.add_argument("--images", required=True, help="folder the splits' file names are relative to")
    p.add_argument("--out", required=True, help="report JSON to write")
    p.add_argument("--fix-leaks", metavar="OUT_DIR", help="write OUT_DIR/<split>.json with each leaked group in "
                   "one split only (--keep-in, else the first --split it touches) and print what moved")
    p.add_argument("--keep-in", metavar="NAME", help="with --fix-leaks: the split leaked groups stay in when they "
                   "touch it (default: the first --split given)")
    p.add_argument("--min-instances", type=int, default=10, metavar="N",
                   help="flag classes with fewer instances than this (default 10)")
    p.add_argument("--min-box", type=float, metavar="PIXELS", help="flag boxes whose side sqrt(w*h) is under "
                   "this, e.g. the model's smallest anchor or stride")
    p.add_argument("--input-size", type=int, metavar="S", help="with --min-box: measure boxes as letterboxed to "
                   "the model's input size S (data.input_size), not in image pixels")
    p.add_argument("--max-distance", type=int, default=10, metavar="BITS",
                   help="near-duplicates: at most this many of the hash's 64 bits differ (default 10)")
    p.add_argument("--plot", metavar="PNG", help="write a figure: class counts, box sizes, leaked pairs")


def add_sequences(sub) -> None:
    p = sub.add_parser("sequences", help="synthetic tracking videos from a COCO dataset's objects",
                       description="Objects of a COCO dataset (cut out by mask, else by box) move smoothly over a "
                       "background, change scale and pass over each other. Per sequence OUT/seq-NNNN/: "
                       "frames/000001.jpg..., seq-NNNN.mp4, groundtruth_rect.txt (OTB: x,y,w,h of object 1, one "
                       "line a frame), gt/gt.txt (MOTChallenge: frame,id,x,y,w,h,1,class,visibility, frames "
                       "from 1), det/det.txt (MOTChallenge public detections made from the ground truth: "
                       "jittered, some missed, low scores for half-hidden objects, none for hidden ones, plus false "
                       "alarms) and seqinfo.ini; OUT/sequences.json lists them. Object 1 is the target, object 2 a "
                       "distractor of its class; --mode crossing makes those two cross at the middle frame.")
    p.add_argument("--annotations", required=True, help="COCO json whose objects are cut out")
    p.add_argument("--images", required=True, help="folder its file names are relative to")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--num-sequences", type=int, default=2, help="how many sequences (default 2)")
    p.add_argument("--frames", type=int, default=60, help="frames per sequence (default 60)")
    p.add_argument("--objects", type=int, default=4, help="objects per sequence, at least 2 (default 4)")
    p.add_argument("--size", type=int, default=256, help="square frame side in pixels (default 256)")
    p.add_argument("--mode", choices=["crossing", "random"], default="crossing",
                   help="crossing: objects 1 and 2 cross paths at the middle frame (default); random: all random")
    p.add_argument("--background", choices=["dataset", "texture"], default="dataset",
                   help="dataset: one of its images with the objects painted out (default); texture: generated")
    p.add_argument("--fps", type=float, default=25.0, help="frame rate of the MP4 and seqinfo.ini (default 25)")
    p.add_argument("--format", choices=["jpg", "png"], default="jpg", help="frame image format (default jpg)")
    p.add_argument("--det-jitter", type=float, default=0.04,
                   help="det/det.txt: std of box position and log size, fraction of the box (default 0.04)")
    p.add_argument("--det-drop", type=float, default=0.1, help="det/det.txt: share of objects missed (default 0.1)")
    p.add_argument("--det-false-alarms", type=float, default=0.3,
                   help="det/det.txt: false boxes per frame, mean (default 0.3)")
    p.add_argument("--seed", type=int, default=0)


COMMANDS = {
    "synth": ("datasets.synthetic.shapes", add_synth),
    "glyphs": ("datasets.synthetic.glyphs", add_glyphs),
    "from-masks": ("datasets.formats.masks", add_from_masks),
    "convert": ("datasets.formats.convert", add_convert),
    "export": ("datasets.formats.export", add_export),
    "validate": ("datasets.checks.validate", add_validate),
    "split": ("datasets.edit.split", add_split),
    "merge": ("datasets.edit.merge", add_merge),
    "tile": ("datasets.edit.tile", add_tile),
    "stats": ("datasets.checks.stats", add_stats),
    "draw": ("datasets.view.draw", add_draw),
    "anchors": ("datasets.checks.anchors", add_anchors),
    "audit": ("datasets.checks.audit", add_audit),
    "sequences": ("datasets.synthetic.sequences", add_sequences),
}


def build_parser(prog: str = "detpipe data") -> argparse.ArgumentParser:
    """The top parser with every subcommand."""
    parser = argparse.ArgumentParser(prog=prog, description="Build, convert, check and inspect COCO datasets.")
    sub = parser.add_subparsers(dest="command", metavar="command")
    sub.required = True
    for _module, add in COMMANDS.values():
        add(sub)
    return parser


@cli_main
def main(argv: list[str] | None = None, prog: str = "detpipe data") -> int:
    """Parse the arguments and run the chosen command; 0 on success, 1 on a user mistake, 2 on a usage error."""
    args = build_parser(prog).parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        module.run(args)
    except BrokenPipeError:
        return 0
    except (OSError, MemoryError, UnicodeDecodeError) as exc:
        raise UserError(str(exc)) from exc
    return 0
