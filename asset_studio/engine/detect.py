"""YOLO-format ONNX detectors (faces, hands, any class the artist's model knows) run by onnxruntime.

No Ultralytics code: its package and the weights it trains are AGPL-3.0, so the artist brings a
detector exported to ONNX and we only read the file. The model arrives from strangers: ONNX only
(pickled .pt files are refused), size-bounded, loaded from bytes so it cannot pull external data
files from elsewhere on disk. Class names come from the export's `names` metadata when present.
The arithmetic around the network (letterbox, decoding, NMS) is core/detection.py.
"""

from __future__ import annotations

import ast
import threading
from dataclasses import dataclass
from pathlib import Path

from asset_studio.core.detection import Detection, detections, letterbox
from asset_studio.core.model_files import is_pickle
from asset_studio.errors import UserError

MAX_DETECTOR_BYTES = 512 * 1024 * 1024  # YOLO detectors are 5-150 MB
DEFAULT_SIZE = 640  # Ultralytics' export size when the input's sides are not fixed
MAX_SIZE = 4096

_cache: dict[tuple, "Detector"] = {}
_lock = threading.Lock()


@dataclass
class Detector:
    path: str
    session: object  # onnxruntime.InferenceSession
    input_name: str
    size: tuple[int, int]  # width, height the network takes
    names: dict[int, str]  # class id → name; empty when the export names none

    @property
    def label(self) -> str:
        return Path(self.path).name

    def class_ids(self, classes: list[str]) -> set[int] | None:
        """The ids of CLASSES (names, case-insensitive, or numbers); None = every class."""
        if not classes:
            return None
        by_name = {name.lower(): i for i, name in self.names.items()}
        ids = set()
        for c in classes:
            if c.strip().isdigit():
                ids.add(int(c))
            elif c.strip().lower() in by_name:
                ids.add(by_name[c.strip().lower()])
            elif not self.names:
                raise UserError(f"The detector {self.label} does not name its classes; give class numbers "
                                f"(0, 1, …) or all instead of '{c}'.")
            else:
                raise UserError(f"The detector {self.label} has no class '{c}'; its classes are "
                                f"{', '.join(self.names.values())}.")
        return ids

    def detect(self, image, confidence: float, classes: list[str]) -> list[Detection]:
        """The regions of IMAGE (PIL) this detector finds, in image pixels, best score first."""
        array, fit = letterbox(image, self.size)
        try:
            raw = self.session.run(None, {self.input_name: array})[0]
        except Exception as exc:  # onnxruntime raises its own types; one sentence, not its trace
            raise UserError(f"The detector {self.label} failed on the image ({str(exc).splitlines()[0][:160]}).") from None
        return detections(raw, fit, image.size, confidence, self.class_ids(classes),
                          class_count=len(self.names) or None)


def load_detector(path: str) -> Detector:
    """The detector in PATH (an .onnx file), checked and ready; one sentence when it is not usable."""
    file = Path(path).expanduser()
    if is_pickle(file):
        raise UserError(f"{file.name} is a pickle file, which can run code when loaded; export the detector "
                        "to ONNX (.onnx) and use that.")
    if not file.is_file():
        raise UserError(f"The detector {path} is not a file.")
    if file.suffix.lower() != ".onnx":
        raise UserError(f"The detector {file.name} is not an ONNX file (.onnx): export the YOLO model to ONNX first.")
    stat = file.stat()
    if stat.st_size > MAX_DETECTOR_BYTES:
        raise UserError(f"The detector {file.name} is {stat.st_size >> 20} MB; detectors above "
                        f"{MAX_DETECTOR_BYTES >> 20} MB are refused.")
    key = (str(file.resolve()), stat.st_size, stat.st_mtime_ns)
    with _lock:
        if key in _cache:
            return _cache[key]
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # onnxruntime's warnings are not the artist's business
    try:
        session = ort.InferenceSession(file.read_bytes(), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception:
        raise UserError(f"The detector {file.name} is not a readable ONNX model.") from None
    inputs = session.get_inputs()
    shape = list(inputs[0].shape) if len(inputs) == 1 else []
    if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
        raise UserError(f"The detector {file.name} does not take one RGB image (its inputs: "
                        f"{', '.join(f'{i.name} {i.shape}' for i in inputs)[:120]}); a YOLO detector takes (1, 3, H, W).")
    outputs = session.get_outputs()
    if not outputs or len(outputs[0].shape) != 3:
        raise UserError(f"The detector {file.name}'s output is not a YOLO box list (shape "
                        f"{outputs[0].shape if outputs else None}); a YOLO detector gives (1, 4 + classes, boxes).")
    meta = session.get_modelmeta().custom_metadata_map
    height, width = (side if isinstance(side, int) and 0 < side <= MAX_SIZE else None for side in shape[2:])
    if height is None or width is None:
        height = width = _meta_size(meta.get("imgsz", "")) or DEFAULT_SIZE
    detector = Detector(path=str(file), session=session, input_name=inputs[0].name, size=(width, height),
                        names=_meta_names(meta.get("names", ""), file.name))
    with _lock:
        _cache.clear()  # one detector at a time is plenty; they are small
        _cache[key] = detector
    return detector


def _meta_names(text: str, label: str) -> dict[int, str]:
    """Ultralytics' `names` metadata, "{0: 'face', 1: 'hand'}", read as a literal (never evaluated)."""
    if not text:
        return {}
    try:
        names = ast.literal_eval(text) if len(text) < 100_000 else None
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        names = None
    if isinstance(names, list):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or not all(isinstance(k, int) and isinstance(v, str) for k, v in names.items()) \
            or sorted(names) != list(range(len(names))):
        raise UserError(f"The detector {label}'s class names are not readable (its 'names' metadata).")
    return names


def _meta_size(text: str) -> int | None:
    try:
        value = ast.literal_eval(text) if text and len(text) < 100 else None
    except (ValueError, SyntaxError):
        return None
    side = value[0] if isinstance(value, (list, tuple)) and value else value
    return side if isinstance(side, int) and 0 < side <= MAX_SIZE else None
