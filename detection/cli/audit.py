"""Rank likely label errors of an annotated dataset with a trained detector:
detpipe audit --checkpoint C --annotations A.json --images DIR --out DIR.

Writes DIR/issues.json (most likely first), DIR/summary.json and DIR/issues.png (the top issues, cropped).
"""
from __future__ import annotations

import argparse

from datasets.core.errors import UserError, cli_main
from detection.audit.label_errors import IssueOptions


def parse_args(argv: list[str] | None, prog: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__.splitlines()[0],
        epilog="Kinds: missing (a confident detection with no labelled box under it), wrong_class (a confident "
        "detection of another class on a labelled box), bad_box (the label's class is detected only partly over "
        "the box), spurious (nothing is detected on a labelled box). Predictions on images the model was trained on "
        "find fewer errors (it learned them): audit the val split, or train on folds and audit each held-out fold.")
    parser.add_argument("--checkpoint", required=True, help="a detector .pt written by detection.train")
    parser.add_argument("--annotations", required=True, help="the COCO json to audit")
    parser.add_argument("--images", required=True, help="folder its file names are relative to")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--exclude-images", metavar="LIST", help="images to skip, e.g. those the model was trained "
                        "on: a COCO json (its images) or a text file of file names, one a line")
    parser.add_argument("--score-threshold", type=float, default=IssueOptions.score_threshold, metavar="T",
                        help=f"a detection this sure is confident (default {IssueOptions.score_threshold})")
    parser.add_argument("--gallery-each", action="store_true", help="also write one picture per issue into DIR/issues/")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--batch-size", type=int, default=8)
    return parser.parse_args(argv)


@cli_main
def main(argv: list[str] | None = None, prog: str = "detpipe audit") -> int:
    """Parse the arguments, run the audit, print the top issues; 0 on success, 1 on a user mistake."""
    args = parse_args(argv, prog)
    if not 0 < args.score_threshold <= 1:
        raise UserError(f"--score-threshold must be within (0, 1], got {args.score_threshold}")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    from detection.audit.runner import AuditRun, audit_labels, print_summary

    run = AuditRun(args.checkpoint, args.annotations, args.images, args.out, args.exclude_images,
                   IssueOptions(score_threshold=args.score_threshold), args.gallery_each, args.device, args.batch_size)
    summary, issues = audit_labels(run)
    print_summary(summary, f"{args.out}/issues.json", issues[:5])
    return 0
