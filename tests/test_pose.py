"""Poses: OpenPose JSON in and out, strict checks, mirroring, presets, the drawing ControlNet saw, sets, CLI."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from PIL import Image

from asset_studio.cli import main
from asset_studio.core.pose import (KEYPOINTS, MAX_PEOPLE, Person, Pose, guess_view, keypoint_index, load_pose,
                                    mirrored, parse_pose_json, preset, preset_names, save_pose, scaled)
from asset_studio.core.pose_render import render_pose
from asset_studio.core.pose_sets import SETS, load_pose_set, output_name
from asset_studio.core.sheet import find_animations
from asset_studio.errors import UserError


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def same(a: Pose, b: Pose, tol=0.01) -> bool:
    """Equal up to the 0.01 px the file form keeps."""
    return (a.width, a.height, len(a.people)) == (b.width, b.height, len(b.people)) and all(
        (p is None and q is None) or (p is not None and q is not None and math.dist(p, q) <= tol)
        for pa, pb in zip(a.people, b.people) for p, q in zip(pa.keypoints, pb.keypoints))


def flat(points, conf=1.0):
    out = []
    for p in points:
        out += [p[0], p[1], conf] if p is not None else [0, 0, 0]
    return out


# A person as sd-webui-controlnet's pose editor saves one: pixels, confidence 1, hidden joints 0,0,0,
# plus face and hand lists we keep out of the body.
EDITOR_PERSON = [
    (256, 90), (256, 140), (216, 142), (200, 210), (190, 275), (296, 142), (312, 210), (322, 275),
    (232, 270), (230, 370), (228, 460), (280, 270), (282, 370), (284, 460), (248, 80), (264, 80), None, (276, 86),
]


def editor_file(tmp_path, **changes):
    data = {"people": [{"pose_keypoints_2d": flat(EDITOR_PERSON), "face_keypoints_2d": [],
                        "hand_left_keypoints_2d": None, "hand_right_keypoints_2d": [10.0, 20.0, 0.5]}],
            "canvas_width": 512, "canvas_height": 512}
    data.update(changes)
    path = tmp_path / "editor.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# ---- file form -----------------------------------------------------------------------------------


def test_editor_file_round_trips(tmp_path):
    pose = load_pose(editor_file(tmp_path))
    assert (pose.width, pose.height, len(pose.people)) == (512, 512, 1)
    person = pose.people[0]
    assert person.point("left wrist") == (322, 275) and person.point("right_ear") is None
    again = tmp_path / "again.json"
    save_pose(pose, again)
    data = json.loads(again.read_text(encoding="utf-8"))
    assert data["canvas_width"] == 512 and data["canvas_height"] == 512
    assert data["people"][0]["pose_keypoints_2d"] == flat(EDITOR_PERSON)  # hidden stays 0, 0, 0
    assert load_pose(again) == pose


def test_normalised_coordinates_body25_and_real_confidences(tmp_path):
    # controlnet-aux keeps 0-1 fractions of the canvas; OpenPose's demo writes BODY_25 with confidences.
    norm = [(x / 512, y / 512) if p else None for p in EDITOR_PERSON for x, y in [p or (0, 0)]]
    pose = parse_pose_json(json.dumps({"canvas_width": 512, "canvas_height": 256,
                                       "people": [{"pose_keypoints_2d": flat(norm)}]}))
    assert pose.people[0].point("neck") == pytest.approx((256, 70))
    body25 = list(EDITOR_PERSON[:8]) + [(256, 270)] + list(EDITOR_PERSON[8:]) + [(230, 470)] * 6
    triples = []
    for n, p in enumerate(body25):
        triples += [p[0], p[1], 0.87 if n != 2 else 0.0] if p else [0, 0, 0]  # right shoulder undetected
    pose = parse_pose_json(json.dumps({"version": 1.3, "canvas_width": 512, "canvas_height": 512,
                                       "people": [{"person_id": [-1], "pose_keypoints_2d": triples}]}))
    kp = pose.people[0].keypoints
    assert kp[1] == (256, 140) and kp[2] is None and kp[8] == (232, 270) and kp[13] == (284, 460)


@pytest.mark.parametrize("change, words", [
    ({"people": [{"pose_keypoints_2d": [1.0] * 51}]}, "must be 54 numbers"),
    ({"people": [{"pose_keypoints_2d": flat(EDITOR_PERSON[:-1]) + [math.nan, 3, 1]}]}, "not valid JSON"),
    ({"people": [{"pose_keypoints_2d": flat(EDITOR_PERSON[:-1]) + ["9", 3, 1]}]}, "not a number"),
    ({"people": [{"pose_keypoints_2d": flat(EDITOR_PERSON[:-1]) + [600, 30, 1]}]}, "left ear at (600, 30), outside"),
    ({"people": [{"pose_keypoints_2d": []}] * 10_000}, f"10000 people; at most {MAX_PEOPLE}"),
    ({"canvas_width": 100_000}, "canvas_width must be a whole number"),
    ({"canvas_height": None}, "canvas_height must be"),
    ({"people": {"a": 1}}, "needs 'people'"),
    ({"people": [{"pose_keypoints_2d": flat(EDITOR_PERSON), "face_keypoints_2d": [0.0] * 20_000}]}, "at most"),
])
def test_bad_pose_files_get_one_sentence(tmp_path, change, words):
    with pytest.raises(UserError) as err:
        load_pose(editor_file(tmp_path, **change))
    assert words in str(err.value) and "\n" not in str(err.value)


def test_nesting_bombs_huge_files_and_infinity(tmp_path):
    big = editor_file(tmp_path, people=[{"pose_keypoints_2d": flat(EDITOR_PERSON)}] * 10_000)
    with pytest.raises(UserError, match="larger than 2 MB"):
        load_pose(big)
    bomb = tmp_path / "bomb.json"
    bomb.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(UserError, match="too large|nests too deeply"):
        load_pose(bomb)
    deep = tmp_path / "deep.json"
    deep.write_text('{"people": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(UserError, match="nests too deeply"):
        load_pose(deep)
    with pytest.raises(UserError, match="Infinity"):
        parse_pose_json('{"canvas_width": Infinity, "canvas_height": 512, "people": []}')
    with pytest.raises(UserError, match="JSON object"):
        parse_pose_json("[1, 2]")


# ---- transformations -----------------------------------------------------------------------------


def test_mirror_flips_x_and_swaps_sides():
    pose = preset("three-quarter-left")
    m = mirrored(pose)
    a, b = pose.people[0], m.people[0]
    assert b.point("left wrist") == pytest.approx((pose.width - a.point("right wrist")[0], a.point("right wrist")[1]))
    assert b.point("neck") == pytest.approx((pose.width - a.point("neck")[0], a.point("neck")[1]))
    assert (a.point("right ear") is None) == (b.point("left ear") is None)
    assert same(mirrored(m), pose, 1e-9)
    # A left-facing preset mirrored is the right-facing one.
    for p, q in zip(mirrored(preset("left")).people[0].keypoints, preset("right").people[0].keypoints):
        assert (p is None and q is None) or p == pytest.approx(q)


def test_scaled_fit_keeps_proportions_and_centres():
    pose = preset("front", 512, 512)
    tall = scaled(pose, 256, 512)
    neck, hip = tall.people[0].point("neck"), tall.people[0].point("right hip")
    assert (tall.width, tall.height) == (256, 512)
    assert neck[0] == pytest.approx(128, abs=1)
    # Half the scale in both axes: the torso is half as long, not squashed in one direction.
    n0, h0 = pose.people[0].point("neck"), pose.people[0].point("right hip")
    assert hip[1] - neck[1] == pytest.approx((h0[1] - n0[1]) / 2)
    stretched = scaled(pose, 256, 512, mode="stretch")
    assert stretched.people[0].point("neck")[1] == pytest.approx(n0[1])


# ---- presets -------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(512, 512), (384, 640), (1024, 576)])
def test_every_preset_is_a_valid_pose_inside_its_canvas(size):
    w, h = size
    for name in preset_names():
        pose = preset(name, w, h)
        back = parse_pose_json(pose.to_json(), f"The preset {name}")  # every file check passes
        assert same(back, pose)
        pts = [p for _, p in pose.people[0].visible()]
        assert all(0.02 * w <= x <= 0.98 * w and 0.02 * h <= y <= 0.98 * h for x, y in pts), name
        person = pose.people[0]
        # Bones keep their lengths (in 3-D): the thigh never looks longer than it is.
        thigh = math.dist(person.point("right hip"), person.point("right knee"))
        ref = preset("front", w, h).people[0]
        assert thigh <= math.dist(ref.point("right hip"), ref.point("right knee")) + 1e-6


def test_views_read_back_as_their_view_words():
    assert guess_view(preset("front").people[0]) == "front view"
    assert guess_view(preset("back").people[0]) == "back view"
    assert guess_view(preset("left").people[0]) == "side view"
    assert guess_view(preset("three-quarter-right").people[0]) == "three-quarter view"
    front, back = preset("front").people[0], preset("back").people[0]
    # From the front the figure's right shoulder is on the image's left; from behind, on its right.
    assert front.point("right shoulder")[0] < front.point("left shoulder")[0]
    assert back.point("right shoulder")[0] > back.point("left shoulder")[0]
    right = preset("right").people[0]
    assert right.point("nose")[0] > right.point("neck")[0]  # faces the image's right
    assert right.point("left eye") is None and right.point("right eye") is not None


def test_walk_and_run_frames_plant_a_foot_and_alternate_legs():
    for cycle, lift_allowed in (("walk", False), ("run", True)):
        feet, forward = [], []
        for i in range(8):
            p = preset(f"{cycle}-{i}").people[0]
            r, l = p.point("right ankle"), p.point("left ankle")
            feet.append(max(r[1], l[1]))
            forward.append(r[0] - l[0])
        ground = max(feet)
        if not lift_allowed:
            assert all(f == pytest.approx(ground) for f in feet)  # a walk always has a foot down
        else:
            assert min(feet) < ground - 1  # a run has flight
        # Frame 0 strikes with the right foot ahead (facing right), half a cycle later the left.
        assert forward[0] > 20 and forward[4] < -20, cycle


# ---- drawing -------------------------------------------------------------------------------------


def test_drawing_matches_controlnet_aux_pixel_for_pixel():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from controlnet_aux.open_pose.body import Keypoint
        from controlnet_aux.open_pose.util import draw_bodypose

    rng = np.random.default_rng(3)
    poses = [preset(n, 384, 320) for n in ("front", "back", "left", "walk-2", "run-5")]
    crowd = Pose(300, 200, [Person([(float(x), float(y)) if rng.random() > 0.2 else None
                                    for x, y in rng.uniform([0, 0], [300, 200], (18, 2))]) for _ in range(3)])
    for pose in [*poses, crowd, mirrored(crowd)]:
        for size in (None, (257, 191)):
            w, h = size or (pose.width, pose.height)
            theirs = np.zeros((h, w, 3), dtype=np.uint8)
            for person in pose.people:
                kps = [Keypoint(p[0] / pose.width, p[1] / pose.height) if p else None for p in person.keypoints]
                theirs = draw_bodypose(theirs, kps)
            ours = np.asarray(render_pose(pose, size))
            assert ours.shape == theirs.shape
            assert np.array_equal(ours, theirs)  # exact: same arithmetic and the same OpenCV rasterisers
            assert ours.any()


def test_hidden_joints_are_not_drawn():
    pose = preset("front", 256, 256)
    full = np.asarray(render_pose(pose))
    pose.people[0].hide("left wrist")
    part = np.asarray(render_pose(pose))
    # The left forearm (limb 6: colour (85, 255, 0) at 0.6) and the left wrist's dot (joint 8: (0, 255, 85)) are gone.
    forearm = np.all(full == (51, 153, 0), axis=-1)
    assert forearm.sum() > 50 and not np.all(part == (51, 153, 0), axis=-1).any()
    assert np.all(full == (0, 255, 85), axis=-1).any() and not np.all(part == (0, 255, 85), axis=-1).any()
    assert Image.fromarray(part).getbbox() is not None


# ---- sets ----------------------------------------------------------------------------------------


def test_set_file_names_group_into_sheet_animations():
    names = []
    for set_name in SETS:
        for p in load_pose_set(set_name, (128, 128)):
            names.append(output_name("knight", p.name))
    assert "knight-front.png" in names and "knight-side.png" in names and "knight-walk-3.png" in names
    animations = {a.name: a.frames for a in find_animations(names)}
    assert animations["knight-walk"] == [f"knight-walk-{i}.png" for i in range(8)]
    assert animations["knight-run"] == [f"knight-run-{i}.png" for i in range(8)]
    assert set(animations) == {"knight-walk", "knight-run"}  # turnaround views are single images
    assert output_name("Red Knight!", "Walk 03") == "red-knight-walk-03.png"


def test_turnaround_views_and_a_folder_of_artist_poses(tmp_path):
    turn = load_pose_set("turnaround-4")
    assert [(p.name, p.view) for p in turn] == [("front", "front view"), ("three-quarter", "three-quarter view"),
                                               ("side", "side view"), ("back", "back view")]
    folder = tmp_path / "jump"
    for n in (10, 2, 1):
        save_pose(preset(f"run-{n % 8}" if n != 10 else "back"), folder / f"Jump {n}.json")
    (folder / "notes.txt").write_text("not a pose")
    poses = load_pose_set(folder)
    assert [p.name for p in poses] == ["jump-1", "jump-2", "jump-10"]  # natural order
    assert poses[2].view == "back view" and poses[0].view == "side view"
    (folder / "jump-2.json").write_text("{}")
    with pytest.raises(UserError, match="both make files named 'jump-2'"):
        load_pose_set(folder)
    with pytest.raises(UserError, match="no pose set 'dance-9'"):
        load_pose_set("dance-9")


# ---- CLI -----------------------------------------------------------------------------------------


def test_cli_new_render_mirror_set_and_list(tmp_path, capsys):
    out = tmp_path / "p.json"
    code, _, err = cli(capsys, "pose", "new", "--preset", "three-quarter-left", "--out", out, "--size", "320x480")
    assert code == 0, err
    pose = load_pose(out)
    assert (pose.width, pose.height) == (320, 480)
    code, _, err = cli(capsys, "pose", "new", "--preset", "front", "--out", out)
    assert code == 2 and "--force" in err
    png = tmp_path / "p.png"
    assert cli(capsys, "pose", "render", out, "--out", png)[0] == 0
    with Image.open(png) as im:
        assert im.size == (320, 480) and np.array_equal(np.asarray(im.convert("RGB")), np.asarray(render_pose(pose)))
    assert cli(capsys, "pose", "mirror", out, "--out", tmp_path / "m.json")[0] == 0
    assert same(load_pose(tmp_path / "m.json"), mirrored(pose))
    group = tmp_path / "group.json"
    code, _, err = cli(capsys, "pose", "new", "--preset", "front", "--preset", "back", "--preset", "walk-2",
                       "--out", group, "--size", "768x384")
    assert code == 0, err
    people = load_pose(group).people
    assert len(people) == 3
    necks = [p.point("neck")[0] for p in people]
    assert necks[0] < 256 < necks[1] < 512 < necks[2]  # one per column
    assert guess_view(people[1]) == "back view"
    code, _, err = cli(capsys, "pose", "new", "--preset", "moonwalk", "--out", tmp_path / "x.json")
    assert code == 2 and "no pose preset 'moonwalk'" in err
    code, out_text, _ = cli(capsys, "pose", "list")
    assert code == 0 and "turnaround-8" in out_text and "walk-0 ... walk-7" in out_text
    code, _, err = cli(capsys, "pose", "set", "walk-8", "--out", tmp_path / "walk", "--subject", "knight", "--size", "96x96")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "walk").glob("*.png")) == [f"knight-walk-{i}.png" for i in range(8)]
    code, _, err = cli(capsys, "pose", "set", "walk-8", "--out", tmp_path / "walk", "--subject", "knight")
    assert code == 2 and "--force" in err
    assert cli(capsys, "pose", "set", "walk-8", "--out", tmp_path / "left", "--mirror", "--size", "96x96")[0] == 0
    left = load_pose(tmp_path / "left" / "walk-3.json").people[0]
    assert left.point("nose")[0] < left.point("neck")[0]  # mirrored: faces the image's left
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"canvas_width": 64, "canvas_height": 64, "people": [{"pose_keypoints_2d": [1] * 53}]}))
    code, _, err = cli(capsys, "pose", "render", bad, "--out", tmp_path / "bad.png")
    assert code == 2 and "must be 54 numbers" in err and "Traceback" not in err


def test_a_set_written_by_the_cli_reads_back_in_its_order(tmp_path, capsys):
    from asset_studio.core.pose_sets import load_pose_set

    code, _, err = cli(capsys, "pose", "set", "turnaround-4", "--out", tmp_path / "turn", "--subject", "knight",
                       "--size", "96x96")
    assert code == 0, err
    names = [p.name for p in load_pose_set(tmp_path / "turn")]
    assert names == ["knight-front", "knight-three-quarter", "knight-side", "knight-back"], "not a-z: the turn's order"


def test_from_image_needs_local_weights(tmp_path, capsys, monkeypatch):
    import asset_studio.engine.annotators as annotators

    monkeypatch.setattr(annotators, "_hf_cache_folder", lambda *a: None)
    monkeypatch.delenv("ASSET_STUDIO_ANNOTATORS", raising=False)
    Image.new("RGB", (64, 64), "white").save(tmp_path / "a.png")
    code, _, err = cli(capsys, "pose", "from-image", tmp_path / "a.png", "--out", tmp_path / "a.json",
                       "--annotators", tmp_path / "none", "--detector", "openpose")
    assert code == 2 and "needs body_pose_model.pth" in err and str(tmp_path / "none") in err
    # DWPose (tests/test_dwpose.py) is the default; its sentence names the catalog download.
    code, _, err = cli(capsys, "pose", "from-image", tmp_path / "a.png", "--out", tmp_path / "a.json",
                       "--annotators", tmp_path / "none")
    assert code == 2 and "DWPose" in err and "models download annotator-dwpose" in err


def test_from_image_runs_the_openpose_body_network(tmp_path, capsys):
    """An un-trained body network (zero weights, one shared storage so the file stays small) loads
    through the user's path; it sees nobody, which is said in a sentence."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from controlnet_aux.open_pose.model import bodypose_model

    from asset_studio.engine.pose_detect import detect_pose

    state = bodypose_model().state_dict()
    storage = torch.zeros(max(t.numel() for t in state.values()), dtype=torch.float16)
    # controlnet-aux's loader strips the first part of each name ("model0.conv1_1.weight" -> "conv1_1.weight").
    zeros = {".".join(k.split(".")[1:]): storage[: t.numel()].view(t.shape) for k, t in state.items()}
    folder = tmp_path / "annotators"
    folder.mkdir()
    torch.save(zeros, folder / "body_pose_model.pth")
    assert (folder / "body_pose_model.pth").stat().st_size < 20 * 1024 * 1024
    image = Image.new("RGB", (96, 128), "gray")
    pose = detect_pose(image, "openpose", annotator_dir=folder)
    assert (pose.width, pose.height, pose.people) == (96, 128, [])
    image.save(tmp_path / "a.png")
    code, _, err = cli(capsys, "pose", "from-image", tmp_path / "a.png", "--out", tmp_path / "a.json",
                       "--annotators", folder)
    assert code == 2 and "found no person" in err and not (tmp_path / "a.json").exists()
    # A pose control image from the picture falls back to the same network (DWPose absent): nobody, all black.
    from asset_studio.engine.annotators import control_from_reference

    control = control_from_reference(image, "pose", annotator_dir=folder)
    assert control.size == image.size and not np.asarray(control).any()
    # A pickle that runs code is refused by torch's weights_only loading, as one sentence.
    (folder / "body_pose_model.pth").write_bytes(b"not a torch file")
    from asset_studio.engine import pose_detect

    pose_detect._bodies.clear()
    with pytest.raises(UserError, match="Could not load the OpenPose body annotator"):
        detect_pose(image, "openpose", annotator_dir=folder)


def test_keypoint_names():
    assert len(KEYPOINTS) == 18 and keypoint_index("left_wrist") == 7 and keypoint_index("Right-Ear") == 16
    with pytest.raises(UserError, match="no keypoint 'tail'"):
        keypoint_index("tail")


# ---- catalog -------------------------------------------------------------------------------------


def test_catalog_has_pose_softedge_and_reference_models_with_licences():
    from asset_studio.core.models import load_catalog

    entries = {e.id: e for e in load_catalog()}
    for wanted in ("controlnet-openpose-sd15", "controlnet-softedge-sd15", "controlnet-openpose-sdxl",
                   "ip-adapter-sd15", "ip-adapter-plus-sd15", "ip-adapter-plus-sdxl-vit-h",
                   "ip-adapter-image-encoder-vit-h", "annotator-dwpose"):
        assert entries[wanted].license, wanted
    for entry in entries.values():
        for name, digest in entry.sha256.items():
            assert len(digest) == 64 and int(digest, 16) >= 0, entry.id
            # A pinned file is one the entry downloads.
            from huggingface_hub.utils import filter_repo_objects

            assert list(filter_repo_objects([name], allow_patterns=entry.allow_patterns)) == [name], entry.id


def test_download_refuses_a_file_whose_sha256_differs(tmp_path, monkeypatch):
    import hashlib
    from types import SimpleNamespace

    import huggingface_hub

    from asset_studio.core import models

    blob = tmp_path / "snap" / "body_pose_model.pth"
    blob.parent.mkdir()
    blob.write_bytes(b"weights")
    info = SimpleNamespace(sha="abc", siblings=[SimpleNamespace(rfilename="body_pose_model.pth", size=7)])
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", lambda self, repo, files_metadata: info)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: str(blob))
    entry = models.CatalogEntry("x", "Test annotator", "lllyasviel/Annotators", "annotator", "",
                                allow_patterns=["body_pose_model.pth"],
                                sha256={"body_pose_model.pth": hashlib.sha256(b"other").hexdigest()})
    with pytest.raises(UserError, match="does not have the sha256 the catalog expects"):
        models.download_entry(entry)
    entry.sha256 = {"body_pose_model.pth": hashlib.sha256(b"weights").hexdigest()}
    assert models.download_entry(entry) == str(blob.parent)
