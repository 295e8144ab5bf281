"""Tables written as they are read: CSV and Excel (xlsx) files produced a batch of rows at a time, so an export of
100,000 records streams to the browser with the memory of one batch.

* **CSV**: UTF-8 with a byte-order mark (Excel then reads Chinese correctly), ``\\r\\n`` line ends (RFC 4180). A
  text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'`` so that a
  spreadsheet shows it as text instead of running it as a formula (CSV injection); numbers are written as they are.
  So does each such character that follows a ``;``, a tab or a line end inside a cell (quotes may stand between):
  a spreadsheet whose locale separates cells with ``;`` (Excel in much of Europe opens a ``.csv`` so) or tabs
  splits the text there, and does not keep a quoted cell after a ``,`` whole, so that part would begin a cell.
* **xlsx**: the smallest workbook Excel, LibreOffice and openpyxl open — one sheet of inline strings and numbers, no
  shared-string table (which would need every string before the sheet) and no styles. The zip is written to a
  stream that cannot seek (sizes follow each entry in a data descriptor; ZIP64 for the sheet, which may pass
  4 GB uncompressed), so each batch's bytes leave at once. Characters XML 1.0 forbids (control characters other
  than tab and line ends) are dropped; a cell holds at most 32,767 characters (Excel's limit), longer text is cut.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from xml.sax.saxutils import escape

__all__ = ["Cell", "CsvWriter", "XlsxWriter"]

Cell = str | int | float | None

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A formula character where a spreadsheet splitting on ``;``, tabs or line ends would begin a cell.
_FORMULA_INSIDE = re.compile(r'(?<=[;\t\r\n])("*)(?=[=+\-@\t\r])')
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_MAX_CELL = 32_767


class CsvWriter:
    """A CSV file, row batches in, bytes out."""

    def __init__(self) -> None:
        self._started = False

    def rows(self, rows: Iterable[Sequence[Cell]]) -> bytes:
        """The bytes of ``rows`` (the first call starts with the byte-order mark)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        for row in rows:
            writer.writerow([_csv_cell(v) for v in row])
        text = out.getvalue()
        if not self._started:
            self._started = True
            text = "\ufeff" + text
        return text.encode("utf-8")

    def close(self) -> bytes:
        """Nothing more (a CSV file has no trailer)."""
        return b"" if self._started else "\ufeff".encode()


def _csv_cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) and not value.is_integer() else str(int(value))
    value = _FORMULA_INSIDE.sub(r"\1'", value)
    return "'" + value if value.startswith(_FORMULA_START) else value


class _Sink:
    """What the zip writes to: kept until taken (no ``tell``/``seek``: zipfile then streams)."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml"'
    ' ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml"'
    ' ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Target="xl/workbook.xml"'
    ' Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"/>'
    "</Relationships>"
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    ' xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="{name}" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Target="worksheets/sheet1.xml"'
    ' Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"/>'
    "</Relationships>"
)
_SHEET_START = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
)
_SHEET_END = "</sheetData></worksheet>"


def _column(index: int) -> str:
    """``A``, ``B``, … ``Z``, ``AA`` … for a 0-based column index."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


def _sheet_name(name: str) -> str:
    cleaned = re.sub(r"[\[\]:*?/\\']", " ", _XML_ILLEGAL.sub("", name)).strip()[:31]
    return escape(cleaned or "Sheet1", {'"': "&quot;"})


class XlsxWriter:
    """An Excel workbook of one sheet, row batches in, bytes out."""

    def __init__(self, sheet_name: str) -> None:
        self._sink = _Sink()
        self._zip = zipfile.ZipFile(self._sink, "w", compression=zipfile.ZIP_DEFLATED)  # type: ignore[call-overload]
        self._zip.writestr("[Content_Types].xml", _CONTENT_TYPES)
        self._zip.writestr("_rels/.rels", _ROOT_RELS)
        self._zip.writestr("xl/workbook.xml", _WORKBOOK.format(name=_sheet_name(sheet_name)))
        self._zip.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        self._sheet = self._zip.open("xl/worksheets/sheet1.xml", "w", force_zip64=True)
        self._sheet.write(_SHEET_START.encode())
        self._row = 0

    def rows(self, rows: Iterable[Sequence[Cell]]) -> bytes:
        """The bytes the workbook has ready after ``rows`` (compressed: some may come with a later batch)."""
        parts: list[str] = []
        for row in rows:
            self._row += 1
            r = self._row
            cells = []
            for index, value in enumerate(row):
                if value is None or value == "":
                    continue
                ref = f"{_column(index)}{r}"
                if isinstance(value, int | float) and not isinstance(value, bool):
                    cells.append(f'<c r="{ref}"><v>{value!r}</v></c>')
                else:
                    text = escape(_XML_ILLEGAL.sub("", str(value))[:_MAX_CELL])
                    cells.append(f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>')
            parts.append(f'<row r="{r}">{"".join(cells)}</row>')
        self._sheet.write("".join(parts).encode())
        return self._sink.take()

    def close(self) -> bytes:
        """The rest of the workbook (the sheet's end and the zip's directory)."""
        self._sheet.write(_SHEET_END.encode())
        self._sheet.close()
        self._zip.close()
        return self._sink.take()
