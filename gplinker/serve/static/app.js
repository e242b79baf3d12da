// The page of `gplinker serve`: Run posts the text box (one text per line) to /predict; a dropped or
// opened JSONL file of `gplinker predict` output is drawn without a server. `?text=...` (repeatable)
// fills the box and runs at once (the browser test uses it).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const results = $("results"), status = $("status");
  const served = location.protocol.startsWith("http");

  function say(message) { status.textContent = message; }

  async function run() {
    const texts = $("text").value.split(/\r?\n/).filter((t) => t.trim());
    if (!texts.length) { say("type a text first"); return; }
    say("running…");
    const started = performance.now();
    try {
      const response = await fetch("predict", { method: "POST", headers: { "content-type": "application/json" },
                                                body: JSON.stringify({ texts }) });
      const body = await response.json();
      if (!response.ok) { say(`error ${response.status}: ${body.error}`); return; }
      GPL.show(results, body);
      say(`${body.length} text(s) in ${Math.round(performance.now() - started)} ms`);
      document.body.dataset.done = "run";
    } catch (e) {
      say(`request failed: ${e.message}`);
    }
  }

  function openFile(file) {
    const reader = new FileReader();
    reader.onload = () => {
      const records = GPL.parseJsonl(String(reader.result));
      GPL.show(results, records);
      say(`${file.name}: ${records.length} record(s)`);
      document.body.dataset.done = "file";
    };
    reader.readAsText(file);
  }

  async function describeModel() {
    if (!served) { $("run").disabled = true; return; }
    try {
      const schema = await (await fetch("schema")).json();
      $("model").textContent = `task ${schema.task}`;
      $("legend").replaceChildren(...schema.labels.map((label) => {
        const chip = document.createElement("span");
        chip.className = "chip";
        chip.style.cssText = `--c: ${GPL.color(label)}`;
        chip.textContent = label;
        return chip;
      }));
    } catch (e) {
      $("model").textContent = "server not reachable: open a prediction JSONL file";
    }
  }

  $("run").addEventListener("click", run);
  $("text").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) run(); });
  $("file").addEventListener("change", (e) => { if (e.target.files[0]) openFile(e.target.files[0]); });
  document.addEventListener("dragover", (e) => { e.preventDefault(); document.body.classList.add("dropping"); });
  document.addEventListener("dragleave", () => document.body.classList.remove("dropping"));
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    document.body.classList.remove("dropping");
    if (e.dataTransfer.files[0]) openFile(e.dataTransfer.files[0]);
  });
  window.addEventListener("resize", () => GPL.drawArcs(results));

  describeModel();
  const preset = new URLSearchParams(location.search).getAll("text");
  if (preset.length && served) { $("text").value = preset.join("\n"); run(); }
})();
