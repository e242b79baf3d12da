"""NER readers: CLUENER (inclusive ends) and plain spans; bad lines name file:line."""

from __future__ import annotations

import pytest

from gplinker.data.examples import Span
from gplinker.data.formats import parse_cluener, parse_spans
from gplinker.data.reading import detect_format, read_examples, read_lines
from gplinker.errors import ConfigError, DataError
from tests.conftest import write_jsonl


def test_cluener_end_is_inclusive_and_every_occurrence_is_kept(tmp_path):
    line = {"text": "王芳说王芳来了北京", "label": {"name": {"王芳": [[0, 1], [3, 4]]}, "address": {"北京": [[7, 8]]}}}
    (example,), report = read_lines(write_jsonl(tmp_path / "c.json", [line]), parse_cluener)
    assert example.spans == (Span(0, 2, "name"), Span(3, 5, "name"), Span(7, 9, "address"))
    assert report.lines == 1 and example.line == 1


@pytest.mark.parametrize("line, message", [
    ({"text": "北京", "label": {"loc": {"北京": [[0, 0]]}}}, "reads '北' but the label says '北京'"),
    ({"text": "北京", "label": {"loc": {"北京": [[0, 5]]}}}, "outside the text"),
    ({"label": {}}, "missing field 'text'"),
    ({"text": 5}, "field 'text' must be str"),
    ({"text": "  "}, "empty text"),
    ({"text": "北京", "label": []}, "field 'label' must be an object"),
])
def test_cluener_errors_name_file_line_and_problem(tmp_path, line, message):
    path = write_jsonl(tmp_path / "c.json", [{"text": "好", "label": {}}, line])
    with pytest.raises(DataError) as err:
        read_lines(path, parse_cluener)
    assert str(err.value).startswith(f"{path}:2: ") and message in str(err.value)
    assert "--skip-invalid" in str(err.value)


def test_spans_format_exclusive_end_and_checks_text(tmp_path):
    ok = {"text": "张伟在北京", "entities": [{"start": 3, "end": 5, "type": "loc", "text": "北京"}]}
    bad = {"text": "张伟在北京", "entities": [{"start": 2, "end": 4, "type": "loc", "text": "北京"}]}
    examples, report = read_lines(write_jsonl(tmp_path / "s.jsonl", [ok, bad, ok]), parse_spans, skip_invalid=True)
    assert [e.spans for e in examples] == [(Span(3, 5, "loc"),)] * 2
    assert [e.line for e in examples] == [1, 3]
    assert len(report.skipped) == 1 and report.skipped[0].line == 2


def test_bom_crlf_blank_lines_and_invalid_utf8(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"text": "\xe5\x8c\x97", "entities": []}\r\n\r\n{"text": "\xff\xfe"}\r\n')
    examples, report = read_lines(path, parse_spans, skip_invalid=True)
    assert [e.text for e in examples] == ["北"]
    assert report.skipped[0].line == 3 and "invalid UTF-8" in report.skipped[0].message


def test_format_detection_and_task_mismatch(tmp_path):
    c = write_jsonl(tmp_path / "c.json", [{"text": "北京", "label": {}}])
    s = write_jsonl(tmp_path / "s.json", [{"text": "北京", "entities": []}])
    assert detect_format(c, "ner") == "cluener" and detect_format(s, "ner") == "spans"
    with pytest.raises(ConfigError, match="holds ner data"):
        read_examples(c, "auto", "relation")


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_lines(tmp_path / "nope.jsonl", parse_spans)
