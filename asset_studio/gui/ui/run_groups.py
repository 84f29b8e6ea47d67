"""The gallery grid's rows: a header per run (time, subject, count; a click collapses or expands it)
followed by the images of the runs that are open.

RunsModel lays gui/model/library.Library.view_rows() over the gallery's LibraryModel (one row per
entry, with the thumbnails and paths), so the entry rows the rest of the gallery and its tests use
stay what they were; the view maps its rows to them. Changes reach the view as row insertions and
removals where they can (a new image, a collapsed run), so the selection survives them.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QAbstractListModel, QModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import QStyle, QStyledItemDelegate

HEADER_HEIGHT = 26


class RunsModel(QAbstractListModel):
    HeaderRole = Qt.ItemDataRole.UserRole + 10  # the run's key on a header row, None on an image

    def __init__(self, library, entries, width: Callable[[], int], cell: QSize, parent=None):
        super().__init__(parent)
        self.library = library
        self.entries = entries  # the LibraryModel: thumbnails, paths, drag data per entry row
        self._width = width
        self._cell = cell
        self._rows: list[tuple] = []
        self._view_of: dict[int, int] = {}  # entry row -> view row
        self._set_rows(self._build())
        entries.modelReset.connect(self._reset)
        entries.rowsInserted.connect(self._sync)
        entries.rowsRemoved.connect(self._sync)
        entries.dataChanged.connect(self._entry_data)
        library.runs_changed.connect(self._sync)

    # --- rows --------------------------------------------------------------------------------------

    def _build(self) -> list[tuple]:
        """(identity, run, entry row or None) per view row."""
        rows = []
        for group, row in self.library.view_rows():
            ident = ("h", group.key) if row is None else ("e", id(self.library.entry(row)))
            rows.append((ident, group, row))
        return rows

    def _set_rows(self, rows: list[tuple]) -> None:
        self._rows = rows
        self._view_of = {r[2]: i for i, r in enumerate(rows) if r[2] is not None}

    def _reset(self) -> None:
        self.beginResetModel()
        self._set_rows(self._build())
        self.endResetModel()

    def _sync(self, *_args) -> None:
        """Bring the rows up to date as one removal and one insertion (the part that changed), so
        the view keeps its selection and scroll position."""
        old, new = self._rows, self._build()
        old_ids, new_ids = [r[0] for r in old], [r[0] for r in new]
        p = 0
        while p < min(len(old), len(new)) and old_ids[p] == new_ids[p]:
            p += 1
        s = 0
        while s < min(len(old), len(new)) - p and old_ids[len(old) - 1 - s] == new_ids[len(new) - 1 - s]:
            s += 1
        if len(old) - s > p:
            self.beginRemoveRows(QModelIndex(), p, len(old) - s - 1)
            self._set_rows(old[:p] + old[len(old) - s:])
            self.endRemoveRows()
        if len(new) - s > p:
            self.beginInsertRows(QModelIndex(), p, len(new) - s - 1)
            self._set_rows(new)
            self.endInsertRows()
        self._set_rows(new)  # the kept rows' runs and entry rows, renumbered
        headers = [i for i, r in enumerate(new) if r[2] is None]
        if headers:  # counts and arrows
            self.dataChanged.emit(self.index(headers[0]), self.index(headers[-1]))

    def _entry_data(self, top, bottom, roles=()) -> None:
        for row in range(top.row(), bottom.row() + 1):
            view = self.view_row(row)
            if view >= 0:
                self.dataChanged.emit(self.index(view), self.index(view), roles)

    def view_row(self, entry_row: int) -> int:
        """The view row showing ENTRY_ROW, or -1 while its run is collapsed."""
        return self._view_of.get(entry_row, -1)

    def entry_row(self, view_row: int) -> int | None:
        """The entry row of VIEW_ROW, None on a header."""
        return self._rows[view_row][2] if 0 <= view_row < len(self._rows) else None

    def run_key(self, view_row: int) -> str | None:
        """The run whose header VIEW_ROW is; None on an image."""
        if 0 <= view_row < len(self._rows) and self._rows[view_row][2] is None:
            return self._rows[view_row][1].key
        return None

    # --- model API ---------------------------------------------------------------------------------

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        _ident, group, row = self._rows[index.row()]
        if row is None:
            if role == Qt.ItemDataRole.DisplayRole:
                return group.label()
            if role == self.HeaderRole:
                return group.key
            if role == Qt.ItemDataRole.SizeHintRole:
                return QSize(max(self._cell.width(), self._width()), HEADER_HEIGHT)
            if role == Qt.ItemDataRole.ToolTipRole:
                return "One run (a press of Generate). Click to " + ("show" if group.collapsed else "hide") + " its images."
            return None
        if role == Qt.ItemDataRole.SizeHintRole:
            return self._cell
        if role == self.HeaderRole or row >= self.entries.rowCount():
            return None
        return self.entries.data(self.entries.index(row), role)

    def flags(self, index: QModelIndex):
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        row = self.entry_row(index.row())
        if row is None:
            return Qt.ItemFlag.ItemIsEnabled  # a header: clicked, never selected or dragged
        return self.entries.flags(self.entries.index(row))

    def mimeTypes(self) -> list[str]:
        return self.entries.mimeTypes()

    def mimeData(self, indexes):
        rows = [self.entry_row(i.row()) for i in indexes if i.isValid()]
        return self.entries.mimeData([self.entries.index(r) for r in rows if r is not None])

    def supportedDragActions(self):
        return self.entries.supportedDragActions()


class RunDelegate(QStyledItemDelegate):
    """Paints a run's header as a full-width bar; images as the icon view always did."""

    def paint(self, painter, option, index) -> None:
        if index.data(RunsModel.HeaderRole) is None:
            super().paint(painter, option, index)
            return
        painter.save()
        rect = QRect(option.rect)
        pal = option.palette
        painter.fillRect(rect.adjusted(0, 2, 0, -2), pal.color(QPalette.ColorRole.AlternateBase))
        if option.state & QStyle.StateFlag.State_MouseOver:
            painter.fillRect(rect.adjusted(0, 2, 0, -2), pal.color(QPalette.ColorRole.Midlight))
        font = QFont(option.font)
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(pal.color(QPalette.ColorRole.WindowText))
        text = painter.fontMetrics().elidedText(index.data(), Qt.TextElideMode.ElideRight, rect.width() - 16)
        painter.drawText(rect.adjusted(8, 0, -8, 0), int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft), text)
        painter.restore()

    def sizeHint(self, option, index) -> QSize:
        hint = index.data(Qt.ItemDataRole.SizeHintRole)
        return hint if isinstance(hint, QSize) else super().sizeHint(option, index)
