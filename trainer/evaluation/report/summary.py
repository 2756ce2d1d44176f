"""The summary table: our test metrics beside the blind baseline and the human row (trainer.baselines)."""
from __future__ import annotations

from html import escape

# The column order captioning papers print.
TABLE_COLUMNS = (("Bleu_1", "BLEU-1"), ("Bleu_2", "BLEU-2"), ("Bleu_3", "BLEU-3"), ("Bleu_4", "BLEU-4"),
                 ("METEOR", "METEOR"), ("ROUGE_L", "ROUGE-L"), ("CIDEr", "CIDEr-D"))


def summary_rows(metrics: dict, baselines: dict | None) -> list[tuple[str, dict]]:
    """(label, metrics) for the model, then the blind and human baselines when they could be computed."""
    rows = [("this model", metrics)]
    if baselines:
        rows.append(("blind baseline (most common training caption)", baselines["blind"]))
    if baselines and baselines.get("human"):  # None when every image has a single reference
        rows.append(("human (first reference vs the others)", baselines["human"]))
    return rows


def summary_table_html(rows: list[tuple[str, dict]]) -> str:
    """HTML table, one row per (label, metrics); a metric a row lacks (METEOR without Java) shows as a dash."""
    columns = [(name, label) for name, label in TABLE_COLUMNS if any(name in values for _, values in rows)]
    head = "".join(f"<th>{escape(label)}</th>" for _, label in columns)
    body = []
    for row_index, (label, values) in enumerate(rows):
        cells = "".join(f"<td>{values[name]:.3f}</td>" if name in values else "<td class=missing>&ndash;</td>"
                        for name, _ in columns)
        body.append(f"<tr{' class=ours' if row_index == 0 else ''}><th scope=row>{escape(label)}</th>{cells}</tr>")
    return (f"<table class=summary><thead><tr><th></th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
