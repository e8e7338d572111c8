import pytest

from v2a.metrics.paper import TABLE1, paper_value, table_rows


def test_table1_holds_the_papers_four_rows():
    assert [r.method for r in TABLE1] == ["Reference", "Im2Wav", "CLIPSonic-IQ", "V2A-Mapper"]
    assert paper_value("V2A-Mapper", "fd") == 24.168
    assert paper_value("V2A-Mapper", "fad") == 0.841
    assert paper_value("Reference", "cs") == 8.925
    assert paper_value("CLIPSonic-IQ", "imagehear_cs") == 11.392


def test_table_rows_are_plain_dicts():
    rows = table_rows("table1")
    assert rows[3]["trainable_params_m"] == 48.83 and rows[0]["imagehear_cs"] is None
    with pytest.raises(ValueError):
        table_rows("table9")
