"""`asset-studio pose ...`: OpenPose skeletons for ControlNet, as JSON files other pose editors read.

  pose list                                               presets and pose sets
  pose new --preset NAME [--preset NAME ...] --out POSE.json [--size WxH] [--mirror] [--force]
  pose render POSE.json --out POSE.png [--size WxH] [--force]
  pose mirror POSE.json --out POSE.json [--force]
  pose set NAME_OR_DIR --out DIR [--subject SLUG] [--size WxH] [--mirror] [--force]   every pose as JSON + PNG
  pose from-image IMAGE --out POSE.json [--detector dwpose|openpose] [--annotators DIR] [--force]

Soft edges (HED, PiDiNet) from a picture are `asset-studio layout reference --control softedge`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asset_studio.errors import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser("pose", help="create, draw and extract OpenPose skeletons",
                              description="Poses: OpenPose body skeletons (18 keypoints) that ControlNet follows.")
    sub = p.add_subparsers(dest="pose_command", metavar="ACTION", required=True)

    ls = sub.add_parser("list", help="list the pose presets and pose sets")
    ls.set_defaults(func=cmd_list)

    new = sub.add_parser("new", help="write a pose from a preset")
    new.add_argument("--preset", required=True, action="append",
                     help="a view (front, three-quarter-left, back, ...) or a cycle frame (walk-3); "
                          "repeat it for several people side by side")
    new.add_argument("--out", required=True, metavar="POSE.json")
    new.add_argument("--size", metavar="WxH", help="canvas size (default 512x512); the figure keeps its proportions")
    new.add_argument("--mirror", action="store_true", help="flip it left to right")
    new.add_argument("--force", action="store_true", help="overwrite POSE.json")
    new.set_defaults(func=cmd_new)

    render = sub.add_parser("render", help="draw a pose's ControlNet OpenPose image")
    render.add_argument("pose", metavar="POSE.json")
    render.add_argument("--out", required=True, metavar="POSE.png")
    render.add_argument("--size", metavar="WxH", help="image size (default: the pose's canvas)")
    render.add_argument("--force", action="store_true", help="overwrite POSE.png")
    render.set_defaults(func=cmd_render)

    mirror = sub.add_parser("mirror", help="flip a pose left to right (its left joints become right ones)")
    mirror.add_argument("pose", metavar="POSE.json")
    mirror.add_argument("--out", required=True, metavar="OUT.json")
    mirror.add_argument("--force", action="store_true", help="overwrite OUT.json")
    mirror.set_defaults(func=cmd_mirror)

    pset = sub.add_parser("set", help="write every pose of a set as JSON and PNG, named as generate names them")
    pset.add_argument("set", metavar="NAME_OR_DIR")
    pset.add_argument("--out", required=True, metavar="DIR")
    pset.add_argument("--subject", default="", help="the subject's file-name stem, e.g. knight")
    pset.add_argument("--size", metavar="WxH", help="canvas size of a built-in set (default 512x512)")
    pset.add_argument("--mirror", action="store_true", help="flip every pose (walk and run cycles then face left)")
    pset.add_argument("--force", action="store_true", help="overwrite files in DIR")
    pset.set_defaults(func=cmd_set)

    det = sub.add_parser("from-image", help="extract a pose from a picture (needs the annotator weights)")
    det.add_argument("image", metavar="IMAGE")
    det.add_argument("--out", required=True, metavar="POSE.json")
    add_detector_option(det)
    det.add_argument("--annotators", metavar="DIR", help="folder with the detector's weights")
    det.add_argument("--force", action="store_true", help="overwrite POSE.json")
    det.set_defaults(func=cmd_from_image)


def add_detector_option(p) -> None:
    """--detector, the same wherever a pose is found in a picture (pose from-image, layout reference)."""
    p.add_argument("--detector", choices=("dwpose", "openpose"),
                   help="pose detector: dwpose (yolox_l.onnx + dw-ll_ucoco_384.onnx, `asset-studio models download "
                        "annotator-dwpose`) or openpose (your own body_pose_model.pth; CMU: non-commercial only); "
                        "default: dwpose when its weights are here, else openpose when its are")


def _free(path: str, force: bool) -> Path:
    """OUT, unless it would replace a file (the project's one rule, core/outputs: --force to replace)."""
    from asset_studio.core.outputs import check_targets

    out = Path(path)
    check_targets([out], force=force)
    return out


def cmd_list(args: argparse.Namespace) -> int:
    from asset_studio.core.pose import CYCLES, VIEWS
    from asset_studio.core.pose_sets import SETS

    print("presets:")
    for name, (_yaw, view) in VIEWS.items():
        print(f"  {name:<26} {view}")
    for cycle, (_fn, n) in CYCLES.items():
        print(f"  {f'{cycle}-0 ... {cycle}-{n - 1}':<26} {cycle} cycle key frames, side view (facing right)")
    print("pose sets:")
    for name, poses in SETS.items():
        print(f"  {name:<26} {', '.join(poses)}")
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    from asset_studio.commands.layout import parse_size
    from asset_studio.core.pose import DEFAULT_SIZE, mirrored, preset, save_pose, side_by_side

    out = _free(args.out, args.force)
    w, h = parse_size(args.size) or DEFAULT_SIZE
    column = max(1, w // len(args.preset))  # each figure is made at its column's size, so none is shrunk twice
    pose = preset(args.preset[0], w, h) if len(args.preset) == 1 else side_by_side(
        [preset(name, column, h) for name in args.preset], w, h)
    if args.mirror:
        pose = mirrored(pose)
    save_pose(pose, out)
    print(out)
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from asset_studio.commands.layout import parse_size, save_png
    from asset_studio.core.pose import load_pose
    from asset_studio.core.pose_render import render_pose

    out = _free(args.out, args.force)
    save_png(render_pose(load_pose(args.pose), parse_size(args.size)), out, "pose render")
    return 0


def cmd_mirror(args: argparse.Namespace) -> int:
    from asset_studio.core.pose import load_pose, mirrored, save_pose

    out = _free(args.out, args.force)
    save_pose(mirrored(load_pose(args.pose)), out)
    print(out)
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    from asset_studio.commands.layout import parse_size, save_png
    from asset_studio.core.pose import DEFAULT_SIZE, mirrored, save_pose
    from asset_studio.core.pose_render import render_pose
    from asset_studio.core.pose_sets import ORDER_FILE, load_pose_set, output_name

    poses = load_pose_set(args.set, parse_size(args.size) or DEFAULT_SIZE)
    if args.mirror:
        for p in poses:
            p.pose = mirrored(p.pose)
    folder = Path(args.out)
    targets = [(p, folder / output_name(args.subject, p.name, "json"), folder / output_name(args.subject, p.name))
               for p in poses]
    if not args.force:
        for _p, js, png in targets:
            for path in (js, png):
                _free(str(path), False)  # refuse before writing anything
    for p, js, png in targets:
        save_pose(p.pose, js)
        save_png(render_pose(p.pose), png, "pose set")
    # The set's order (a turnaround is not in a-z order), so `generate --pose-set FOLDER` keeps it.
    (folder / ORDER_FILE).write_text("".join(f"{js.stem}\n" for _p, js, _png in targets), encoding="utf-8")
    return 0


def cmd_from_image(args: argparse.Namespace) -> int:
    from asset_studio.commands.layout import open_image
    from asset_studio.core.pose import save_pose
    from asset_studio.engine.pose_detect import detect_pose

    out = _free(args.out, args.force)
    pose = detect_pose(open_image(args.image), args.detector, annotator_dir=args.annotators)
    if not pose.people:
        raise UserError(f"The pose detector found no person in {args.image}.")
    save_pose(pose, out)
    print(f"{out} ({len(pose.people)} {'person' if len(pose.people) == 1 else 'people'})")
    return 0
