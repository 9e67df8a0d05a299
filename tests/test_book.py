"""bn_utils.book: tables that render the same in the book, in Colab and in a console."""

from bn_utils import book


def test_markdown_table_escapes_pipes_so_cells_stay_whole():
    table = book.Table([{"max |x − y|": 0.5, "name": "a|b"}])
    lines = table._repr_markdown_().splitlines()
    # An unescaped "|" would add columns: every line has as many cell separators as the header.
    count = [line.replace("\\|", "").count("|") for line in lines]
    assert count == [3, 3, 3]
    assert "max \\|x − y\\|" in lines[0] and "a\\|b" in lines[2]
    assert "<th>max |x − y|</th>" in table._repr_html_()
