"""The numbers the docs quote: each tagged number agrees with its committed record, a number
changed by hand fails the check and is rewritten back, and the tag mechanics (wrapped intervals,
verdict words, p-values below what is printed) do what the docs rely on."""

import re
import shutil
from pathlib import Path

import pytest

from mmftraj.experiments import doc_numbers
from mmftraj.experiments.findings import DOCS, report_findings

REPO = Path(__file__).resolve().parents[1]
INTERVAL = re.compile(rf"{doc_numbers.NUMBER}\s+\[{doc_numbers.NUMBER},\s+{doc_numbers.NUMBER}\]")
ESTIMATE = re.compile(rf"{doc_numbers.NUMBER}\s+±\s+{doc_numbers.NUMBER}")


def _copy(tmp_path: Path) -> Path:
    """A checkout of the docs beside the real records (linked, not copied)."""
    for doc in DOCS:
        (tmp_path / doc).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / doc, tmp_path / doc)
    (tmp_path / "benchmarks").symlink_to(REPO / "benchmarks")
    return tmp_path


def test_every_tagged_number_of_the_committed_docs_agrees_with_its_record():
    lines = []
    assert report_findings(True, lines.append, REPO) == 0, "\n".join(lines)
    counts = {doc: len(doc_numbers.tags((REPO / doc).read_text())) for doc in DOCS}
    assert counts["docs/findings.md"] > 300 and counts["README.md"] >= 8 and counts["docs/results.md"] >= 50, counts


def test_a_number_changed_by_hand_fails_the_check_and_the_rewrite_puts_the_record_back(tmp_path):
    root = _copy(tmp_path)
    page = root / "docs" / "findings.md"
    original = page.read_text()
    quoted = "−0.0013 [−0.0122, +0.0096]<!-- tangent.toy2d.mmf-meanflow -->"
    assert quoted in original
    page.write_text(original.replace(quoted, quoted.replace("+0.0096", "+0.0097"), 1))
    lines = []
    assert report_findings(True, lines.append, root) == 1
    assert any("tangent.toy2d.mmf-meanflow" in line and "'−0.0013 [−0.0122, +0.0097]'" in line
               and "'−0.0013 [−0.0122, +0.0096]'" in line for line in lines), lines
    assert page.read_text() != original  # --check writes nothing
    assert report_findings(False, lines.append, root) == 0 and page.read_text() == original
    assert report_findings(True, lines.append, root) == 0


def test_every_interval_and_mean_with_its_error_on_the_findings_page_is_tagged():
    """An interval or a mean ± s.e. typed without a tag is a number nothing checks."""
    text = (REPO / "docs" / "findings.md").read_text()
    untagged = [m.group(0) for pattern in (INTERVAL, ESTIMATE) for m in pattern.finditer(text)
                if not text.startswith("<!--", m.end())]
    assert not untagged, untagged


def _update(tmp_path: Path, text: str, values: dict[str, str]):
    page = tmp_path / "page.md"
    page.write_text(text)
    return doc_numbers.update(page, lambda name, options: values.get(name))


def test_a_wrapped_interval_keeps_its_line_break_and_a_p_below_the_printed_floor_is_replaced_whole(tmp_path):
    text = "gap −0.0065 [−0.0089,\n  −0.0041]<!-- a.b --> at 4096 (p < 0.001<!-- a.p -->)\n"
    new, found = _update(tmp_path, text, {"a.b": "−0.0065 [−0.0089, −0.0041]", "a.p": "< 0.001"})
    assert new == text and found == []
    new, found = _update(tmp_path, text, {"a.b": "−0.0066 [−0.0090, −0.0042]", "a.p": "0.012"})
    assert new == "gap −0.0066 [−0.0090,\n  −0.0042]<!-- a.b --> at 4096 (p 0.012<!-- a.p -->)\n"
    assert [f.name for f in found] == ["a.b", "a.p"] and found[0].line == 2


def test_a_changed_verdict_an_unknown_name_and_a_tag_without_its_number_are_reported_not_rewritten(tmp_path):
    text = "not separable<!-- v.x verdict --> and 1.5<!-- no.such --> and the word<!-- n.x --> <!-- a comment -->\n"
    new, found = _update(tmp_path, text, {"v.x": "mmf better", "n.x": "0.5"})
    assert new == text  # a verdict word is the prose's to change, not the program's
    assert [(f.name, f.quoted) for f in found] == [("v.x", ""), ("no.such", ""), ("n.x", "")]
    assert "no number of the form 'mmf better'" in str(found[0]) and "no quantity" in str(found[1])


def test_the_command_line_checks_the_committed_docs_and_refuses_check_for_a_grid():
    from typer.testing import CliRunner

    from mmftraj.cli import app

    result = CliRunner().invoke(app, ["report", "findings", "--check"])
    assert result.exit_code == 0, result.output
    assert "0 tagged numbers differ from their records, 0 tags could not be checked" in result.output


@pytest.mark.parametrize("doc", DOCS)
def test_tags_sit_right_after_their_number(doc):
    """A tag after a space or a unit would be read as belonging to nothing (the check says so);
    this finds it before the check does, with the line."""
    text = (REPO / doc).read_text()
    loose = [text[max(0, m.start() - 20):m.end()] for m in doc_numbers.TAG.finditer(text)
             if text[m.start() - 1].isspace()]
    assert not loose, loose
