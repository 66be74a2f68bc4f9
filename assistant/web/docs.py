"""/docs: the API reference as one self-contained HTML page rendered from the OpenAPI schema.

FastAPI's Swagger UI loads its scripts from a CDN and stays blank on an intranet without
internet access; this page needs nothing but itself (the machine-readable schema is still at
/openapi.json for tools that want it).
"""

from __future__ import annotations

import html
import json
from typing import Any

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#1f2937;line-height:1.45}
h1{margin-bottom:.2rem} code,pre{font-family:ui-monospace,monospace;font-size:.9em}
pre{background:#f3f4f6;padding:.6rem;border-radius:6px;overflow:auto;white-space:pre-wrap}
section.op{border:1px solid #d1d5db;border-radius:8px;margin:1rem 0;padding:.4rem 1rem}
.method{display:inline-block;min-width:4.5rem;font-weight:700;color:#fff;background:#1e40af;
border-radius:4px;padding:.1rem .4rem;text-align:center;margin-right:.5rem}
.method.get{background:#166534}.method.delete{background:#991b1b}
"""


def _schema_text(schema: dict[str, Any], components: dict[str, Any]) -> str:
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        name = ref.rsplit("/", 1)[1]
        schema = {"title": name, **components.get(name, {})}
    return json.dumps(schema, indent=2, ensure_ascii=False)


def docs_html(openapi: dict[str, Any], root: str = "") -> str:
    e = html.escape
    components = openapi.get("components", {}).get("schemas", {})
    info = openapi.get("info", {})
    sections = []
    for path, operations in openapi.get("paths", {}).items():
        for method, op in operations.items():
            body = op.get("requestBody", {}).get("content", {})
            request = "".join(
                f"<p>Request body ({e(kind)}):</p>"
                f"<pre>{e(_schema_text(spec.get('schema', {}), components))}</pre>"
                for kind, spec in body.items()
            )
            params = "".join(
                f"<li><code>{e(p['name'])}</code> ({e(p.get('in', ''))})</li>"
                for p in op.get("parameters", [])
            )
            responses = ", ".join(
                f"{e(code)} {e(r.get('description', ''))}"
                for code, r in op.get("responses", {}).items()
            )
            sections.append(
                f'<section class="op" id="{e(method + path)}"><h2>'
                f'<span class="method {e(method)}">{e(method.upper())}</span>'
                f"<code>{e(path)}</code></h2>"
                f"<p><strong>{e(op.get('summary', ''))}</strong></p>"
                f"<p>{e(op.get('description', ''))}</p>"
                + (f"<p>Parameters:</p><ul>{params}</ul>" if params else "")
                + request
                + f"<p>Responses: {responses}</p></section>"
            )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(info.get('title', 'API'))} – API</title><style>{_STYLE}</style></head>"
        f"<body><main><h1>{e(info.get('title', 'API'))} API</h1>"
        f"<p>Version {e(str(info.get('version', '')))} · "
        f'<a href="{e(root)}/openapi.json">openapi.json</a></p>'
        f"<pre>{e(info.get('description', ''))}</pre>{''.join(sections)}</main></body></html>"
    )
