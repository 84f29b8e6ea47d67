"""The live preview: the latest step's picture, or the finished image, scaled to fit."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPainter, QPixmap
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy

from asset_studio.gui.gallery import checkerboard


class PreviewPanel(QLabel):
    def __init__(self):
        super().__init__()
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(200, 200)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self._image = QImage()
        self._crisp = False
        self.setText("The live preview appears here while an image is generated.")
        self.setWordWrap(True)

    def set_image(self, image: QImage, crisp: bool = False) -> None:
        """crisp: enlarge with nearest-neighbour (finished pixel art); step previews are smoothed."""
        self._image = image
        self._crisp = crisp
        self._rescale()

    def image(self) -> QImage:
        return self._image

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._image.isNull():
            return
        side = max(16, min(self.width(), self.height()) - 12)
        # Pixel art stays crisp when enlarged: nearest-neighbour for upscales.
        upscale = max(self._image.width(), self._image.height()) < side
        mode = (Qt.TransformationMode.FastTransformation if (upscale and self._crisp)
                else Qt.TransformationMode.SmoothTransformation)
        scaled = self._image.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, mode)
        canvas = checkerboard(max(scaled.width(), scaled.height())).toImage().copy(0, 0, scaled.width(), scaled.height())
        p = QPainter(canvas)
        p.drawImage(0, 0, scaled)
        p.end()
        self.setPixmap(QPixmap.fromImage(canvas))
