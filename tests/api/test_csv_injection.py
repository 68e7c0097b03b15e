"""CSV formula injection (issue 17): text that a spreadsheet would run is neutralised."""

from __future__ import annotations

import csv
import io

from api.formats import csv_text


def test_cells_starting_like_a_formula_are_quoted() -> None:
    rows = [
        {"note": '=HYPERLINK("http://evil")', "n": -3},
        {"note": "+1+cmd|' /C calc'!A0", "n": 1},
        {"note": "-2+3", "n": 2},
        {"note": "@SUM(A1)", "n": 3},
        {"note": "\tTAB", "n": 4},
        {"note": "\rCR", "n": 5},
        {"note": "plain", "n": 6},
    ]
    read = list(csv.reader(io.StringIO(csv_text(rows, ["note", "n"]).decode())))
    notes = [line[0] for line in read[1:]]
    assert all(note.startswith("'") for note in notes[:6])
    assert notes[6] == "plain"
    assert read[1][1] == "-3"  # a number stays a number
