"""Participants tables: the separator is sniffed among real ones, and columns are named as written."""
from __future__ import annotations

import pytest

from brainage.data.io import read_participants
from brainage.errors import DataError


def test_a_one_column_age_table_is_read_with_ids_implied_by_row_order(tmp_path):
    """The stacked-npy format's table: ``age`` alone, one subject a row."""
    path = tmp_path / "participants.csv"
    path.write_text("age\n31.5\n47\n62.25\n")
    table = read_participants(path, require_id=False)
    assert list(table["subject_id"]) == ["row-0000", "row-0001", "row-0002"]
    assert list(table["age"]) == [31.5, 47.0, 62.25]


@pytest.mark.parametrize("sep", [",", "\t", ";"], ids=["comma", "tab", "semicolon"])
def test_comma_tab_and_semicolon_tables_are_split_on_their_separator(tmp_path, sep):
    path = tmp_path / "participants.csv"  # .csv for all three, so the separator is sniffed
    rows = [["participant_id", "age", "sex", "site"], ["sub-01", "31.5", "F", "A"],
            ["sub-02", "47", "M", "B"]]
    path.write_text("".join(sep.join(row) + "\n" for row in rows))
    table = read_participants(path)
    assert list(table["subject_id"]) == ["sub-01", "sub-02"]
    assert list(table["age"]) == [31.5, 47.0]
    assert list(table["sex"]) == ["F", "M"] and list(table["site"]) == ["A", "B"]


def test_a_one_column_table_without_age_names_its_column_as_written(tmp_path):
    path = tmp_path / "participants.csv"
    path.write_text("years\n31\n47\n")
    with pytest.raises(DataError, match=r"no 'age' column \(found columns: years\)$"):
        read_participants(path, require_id=False)


def test_a_table_without_an_id_column_names_its_columns_as_written(tmp_path):
    path = tmp_path / "participants.csv"
    path.write_text("name;age\nsub-01;31\n")
    with pytest.raises(DataError, match=r"no subject id column.*\(found columns: name, age\)$"):
        read_participants(path)
