"""The report's HTML: the template in ``assets/`` with the CSS, the gallery script and the data inlined."""
from __future__ import annotations

import json
import re
from html import escape
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
MARKER = re.compile(r"@@([A-Z]+)@@")


def _json_for_script(value) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``</script>`` can end the element early."""
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")


def curves_html(curves_file: str | None, train_log: Path | None, problem: str | None = None) -> str:
    """The curves image, or a note saying why there is none (``problem``: the train log could not be read)."""
    if curves_file:
        return (f'<img class="curves" src="{escape(curves_file)}" alt="learning curves">'
                f'<p class="note">From {escape(str(train_log))}.</p>')
    reason = escape(problem) if problem else f"{escape(str(train_log))} has no loss or validation records" \
        if train_log else "no train_log.jsonl found beside the checkpoint (looked in CKPT, CKPT/.. and CKPT/../..)"
    return f'<p class="note">No learning curves: {reason}.</p>'


def render_page(title: str, subtitle: str, summary_html: str, curves_section: str, records: list[dict],
                settings: dict) -> str:
    """The whole page; every text that comes from data is escaped (HTML) or JSON-encoded (script data)."""
    template = (ASSETS / "template.html").read_text(encoding="utf-8")
    parts = {"TITLE": escape(title), "SUBTITLE": escape(subtitle), "SUMMARY": summary_html, "CURVES": curves_section,
             "CSS": (ASSETS / "report.css").read_text(encoding="utf-8"),
             "SCRIPT": (ASSETS / "gallery.js").read_text(encoding="utf-8"),
             "RECORDS": _json_for_script(records), "SETTINGS": _json_for_script(settings)}
    # One pass over the template: text put in is never scanned for markers again.
    return MARKER.sub(lambda match: parts[match.group(1)], template)
