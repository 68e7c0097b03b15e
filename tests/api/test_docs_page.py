"""/docs renders the hub's own /openapi.json with its own script: run here under Node with a
minimal DOM (the browser tests take the screenshots), it lists every operation and the
signature profile, and sets text only (nothing from the document is parsed as HTML)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.api.hub import LiveHub

NODE = shutil.which("node")
HARNESS = r"""
const fs = require("fs");
const el = (tag) => ({ tag, children: [], textContent: "", className: "", innerHTML: undefined,
  appendChild(c) { this.children.push(c); return c; } });
const main = el("main"), status = el("p");
global.document = { getElementById: (id) => (id === "doc" ? main : status), createElement: el };
global.fetch = async () => ({ json: async () => JSON.parse(fs.readFileSync(process.argv[3], "utf8")) });
require(process.argv[2]);
setTimeout(() => {
  const texts = [], tags = new Set();
  const walk = (e) => { tags.add(e.tag); if (e.textContent) texts.push(e.textContent); e.children.forEach(walk);
    if (e.innerHTML !== undefined) throw new Error("innerHTML used"); };
  walk(main);
  console.log(JSON.stringify({ texts, status: status.textContent }));
}, 200);
"""


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_docs_script_renders_every_operation_and_the_signature_profile(live_hub: LiveHub, tmp_path: Path) -> None:
    document = live_hub.get("/openapi.json").json()
    script = live_hub.get("/docs/docs.js").text
    (tmp_path / "openapi.json").write_text(json.dumps(document))
    (tmp_path / "docs.js").write_text(script)
    (tmp_path / "harness.js").write_text(HARNESS)
    done = subprocess.run(
        [str(NODE), str(tmp_path / "harness.js"), str(tmp_path / "docs.js"), str(tmp_path / "openapi.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["status"] == ""  # "Could not load" would be here
    assert set(document["paths"]) <= set(shown["texts"])
    assert any("x-http-message-signatures" in t for t in shown["texts"])
    assert "Signature-Input" in shown["texts"]
