"""Render a compliance report as JSON, Markdown or a standalone HTML page (Jinja2, autoescaped)."""

from __future__ import annotations

from typing import Any

import jinja2
import orjson

from .report import Report

__all__ = ["FORMATS", "render"]

FORMATS = ("md", "html", "json")


def render(report: Report, fmt: str) -> str:
    if fmt == "json":
        return orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
    if fmt == "md":
        return _markdown(report)
    if fmt == "html":
        return _HTML.render(r=report, data=report.to_json())
    raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _cell(value: Any) -> str:
    """A Markdown table cell: pipes and newlines escaped, None as a dash."""
    if value is None or value == []:
        return "—"
    if isinstance(value, list):
        value = ", ".join(map(str, value))
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    if not rows:
        return ["None in this period.", ""]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def _markdown(report: Report) -> str:
    i = report.integrity
    summary = report.to_json()["summary"]
    verified = {True: "passed", False: "FAILED", None: "not run"}[i.verified]
    out = [
        f"# Audit report {report.since[:10]} – {report.until[:10]}",
        "",
        f"Log `{i.origin}`, generated {report.generated}. Every figure below is derived from entries 0 to "
        f"{i.size - 1} of the checkpoint of size {i.size}, root `{i.root}`; each row names its log index.",
        "",
        "## Integrity",
        "",
        f"- Checkpoint: size {i.size}, root `{i.root}`",
        f"- Witness cosignatures: {', '.join(i.cosigners) if i.cosigners else 'none'}",
        f"- Witness policy: {'met (' + i.witness_policy + ')' if i.witness_policy else 'none met'}",
        f"- Full verification: {verified}{' — ' + i.verify_detail if i.verify_detail else ''}",
        "",
        "```",
        i.checkpoint.rstrip("\n"),
        "```",
        "",
        "## Summary",
        "",
        *[f"- {key.replace('_', ' ')}: {value}" for key, value in summary.items()],
        "",
        "## Code changes and their approvals",
        "",
        *_table(
            ["index", "time", "repository", "#", "author", "merged by", "approved by", "independent approval"],
            [
                [
                    c.index,
                    c.time,
                    c.repository,
                    c.number,
                    c.author,
                    c.merged_by,
                    c.approvers,
                    "yes" if c.independently_approved else "**NO**",
                ]
                for c in report.changes
            ],
        ),
        "## Deploys to production",
        "",
        *_table(
            ["index", "time", "env", "target", "actor", "action", "outcome"],
            [[d.index, d.time, d.env, d.target, d.actor, d.action, d.outcome] for d in report.deploys],
        ),
        "## Access changes",
        "",
        *_table(
            ["index", "time", "action", "actor", "target", "outcome"],
            [[a.index, a.time, a.action, a.actor, a.target, a.outcome] for a in report.access_changes],
        ),
        "## Failed authentication by actor and source IP",
        "",
        *_table(
            ["actor", "ip", "failures", "first", "last", "first index", "last index"],
            [[f.actor, f.ip, f.count, f.first, f.last, f.first_index, f.last_index] for f in report.auth_failures],
        ),
    ]
    return "\n".join(out)


_HTML = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Audit report {{ r.since[:10] }} – {{ r.until[:10] }} · {{ r.integrity.origin }}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1a1a1a}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}
th{background:#f3f3f3}.bad{color:#b00020;font-weight:600}pre{background:#f6f6f6;padding:.75rem;overflow:auto}
</style></head><body>
<h1>Audit report {{ r.since[:10] }} – {{ r.until[:10] }}</h1>
<p>Log <code>{{ r.integrity.origin }}</code>, generated {{ r.generated }}. Every figure is derived from entries 0 to
{{ r.integrity.size - 1 }} of the checkpoint of size {{ r.integrity.size }}, root <code>{{ r.integrity.root }}</code>;
each row names its log index.</p>
<h2>Integrity</h2>
<ul>
<li>Witness cosignatures: {{ r.integrity.cosigners | join(", ") if r.integrity.cosigners else "none" }}</li>
<li>Witness policy: {% if r.integrity.witness_policy %}met ({{ r.integrity.witness_policy }}){% else %}none met
{% endif %}</li>
<li>Full verification: {% if r.integrity.verified is none %}not run{% elif r.integrity.verified %}passed{% else %}
<span class="bad">FAILED</span>{% endif %} {{ r.integrity.verify_detail }}</li>
</ul>
<pre>{{ r.integrity.checkpoint }}</pre>
<h2>Summary</h2>
<table>{% for key, value in data.summary.items() %}<tr><th>{{ key.replace("_", " ") }}</th><td>{{ value }}</td></tr>
{% endfor %}</table>
<h2>Code changes and their approvals</h2>
{% if r.changes %}<table><tr><th>index</th><th>time</th><th>repository</th><th>#</th><th>author</th><th>merged by</th>
<th>approved by</th><th>independent approval</th></tr>
{% for c in r.changes %}<tr><td>{{ c.index }}</td><td>{{ c.time }}</td><td>{{ c.repository }}</td>
<td>{{ c.number }}</td><td>{{ c.author }}</td><td>{{ c.merged_by }}</td><td>{{ c.approvers | join(", ") }}</td>
<td>{% if c.independently_approved %}yes{% else %}<span class="bad">NO</span>{% endif %}</td></tr>
{% endfor %}</table>{% else %}<p>None in this period.</p>{% endif %}
<h2>Deploys to production</h2>
{% if r.deploys %}<table><tr><th>index</th><th>time</th><th>env</th><th>target</th><th>actor</th><th>action</th>
<th>outcome</th></tr>
{% for d in r.deploys %}<tr><td>{{ d.index }}</td><td>{{ d.time }}</td><td>{{ d.env }}</td><td>{{ d.target }}</td>
<td>{{ d.actor }}</td><td>{{ d.action }}</td><td>{{ d.outcome }}</td></tr>
{% endfor %}</table>{% else %}<p>None in this period.</p>{% endif %}
<h2>Access changes</h2>
{% if r.access_changes %}<table><tr><th>index</th><th>time</th><th>action</th><th>actor</th><th>target</th>
<th>outcome</th></tr>
{% for a in r.access_changes %}<tr><td>{{ a.index }}</td><td>{{ a.time }}</td><td>{{ a.action }}</td>
<td>{{ a.actor }}</td><td>{{ a.target }}</td><td>{{ a.outcome }}</td></tr>
{% endfor %}</table>{% else %}<p>None in this period.</p>{% endif %}
<h2>Failed authentication by actor and source IP</h2>
{% if r.auth_failures %}<table><tr><th>actor</th><th>ip</th><th>failures</th><th>first</th><th>last</th>
<th>first index</th><th>last index</th></tr>
{% for f in r.auth_failures %}<tr><td>{{ f.actor }}</td><td>{{ f.ip }}</td><td>{{ f.count }}</td><td>{{ f.first }}</td>
<td>{{ f.last }}</td><td>{{ f.first_index }}</td><td>{{ f.last_index }}</td></tr>
{% endfor %}</table>{% else %}<p>None in this period.</p>{% endif %}
</body></html>
"""
)
