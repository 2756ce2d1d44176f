"""The summary table: our test metrics beside the blind baseline and the human row (trainer.baselines)."""
from __future__ import annotations

from html import escape

from trainer.evaluation.metrics import report_scores


def summary_rows(metrics: dict, baselines: dict | None) -> list[tuple[str, dict]]:
    """(label, metrics) for the model, then the blind and human baselines when they could be computed."""
    rows = [("this model", metrics)]
    if baselines:
        rows.append(("blind baseline (most common training caption)", baselines["blind"]))
    if baselines and baselines.get("human"):  # None when every image has a single reference
        rows.append(("human (first reference vs the others)", baselines["human"]))
    return rows


def summary_table_html(rows: list[tuple[str, dict]]) -> str:
    """HTML table, one row per (label, metrics), one column per registered score some row has, in the order papers
    print them (``report_scores``); a score a row lacks (METEOR without Java) shows as a dash."""
    columns = [(score.name, score.label) for score in report_scores() if any(score.name in values for _, values in rows)]
    head = "".join(f"<th>{escape(label)}</th>" for _, label in columns)
    body = []
    for row_index, (label, values) in enumerate(rows):
        cells = "".join(f"<td>{values[name]:.3f}</td>" if name in values else "<td class=missing>&ndash;</td>"
                        for name, _ in columns)
        body.append(f"<tr{' class=ours' if row_index == 0 else ''}><th scope=row>{escape(label)}</th>{cells}</tr>")
    return (f"<table class=summary><thead><tr><th></th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
