"""Daily figures from a CSV file: a local file inside ``KRSYNC_FILES_DIR``, or a URL.

A "publish to web" Google Sheet CSV link (``…/pub?output=csv``) works as it is, as does any
other public CSV URL; it is fetched through the engine's HTTP client like every other call.

Reading is forgiving about the shapes real exports come in, and strict about what it guesses:

- **Encoding**: UTF-8 with or without a BOM, UTF-16 with a BOM (Excel's "Unicode text"); any
  other bytes are read as Windows-1252, with a warning.
- **Delimiter**: ``config.delimiter``, else sniffed among ``,``, ``;`` and tab.
- **Decimal mark**: ``config.decimal``, else ``,`` when the delimiter is ``;`` and ``.`` otherwise.
  Thousands separators are tolerated where they are unambiguous (``1.234,5`` with a decimal comma,
  ``1,234.5`` with a decimal point), as are spaces, no-break spaces and ``'`` between digits.
- **Dates**, tried in this order: ``config.date_format`` (a ``strptime`` format) when given;
  ISO ``YYYY-MM-DD`` (also with ``/`` or ``.``, and with a time after it); ``DD.MM.YYYY`` and
  ``DD-MM-YYYY``; ``DD/MM/YYYY``, or ``MM/DD/YYYY`` only when the file proves it (a second part
  above 12 and no first part above 12). A file whose slash dates are all ambiguous is read
  day-first, with a warning saying how to get month-first.
- **Rows**: blank lines and rows with only empty cells are skipped, as are rows with an empty
  value (a sheet's formula rows not filled yet). Rows dated outside the window are ignored. A row
  that can't be read (a bad date, a value that isn't a number, too few fields) is reported in
  the run's warnings as ``line N: reason`` and the rest of the file is kept.

Rows that pass the mapping's filters (on any column's text) are summed per (day, group).
"""

from connectors.csv_source.connector import CsvConnector
from connectors.csv_source.reading import parse_number

__all__ = ["CsvConnector", "parse_number"]
