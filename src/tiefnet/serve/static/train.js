// tiefnet serve, "Train": start a small tiefnet mnist training, watch its epochs arrive as server-sent
// events, stop it. The settings (and the training's id) are in the URL.
"use strict";

(function () {
  const form = document.getElementById("train-form");
  const start = document.getElementById("train-start");
  const stop = document.getElementById("train-stop");
  const status = document.getElementById("train-status");
  const error = document.getElementById("train-error");
  const chart = document.getElementById("train-chart");
  const rows = document.querySelector("#train-epochs tbody");
  const NUMBERS = ["eta", "lmbda", "epochs", "batch_size", "train_size", "seed"];
  let training = null, source = null, epochs = [];

  function settings() {
    const values = {};
    for (const input of form.elements) {
      if (!input.name) continue;
      values[input.name] = NUMBERS.includes(input.name) ? Number(input.value) : input.value.trim();
    }
    return values;
  }

  function remember() {
    setParams({ ...settings(), training });
  }

  function fill(values) {
    for (const input of form.elements) if (input.name && input.name in values) input.value = values[input.name];
  }

  function draw() {
    const g = chart.getContext("2d"), W = chart.width, H = chart.height, pad = 36;
    g.clearRect(0, 0, W, H);
    g.strokeStyle = "#999"; g.fillStyle = "#222"; g.font = "12px sans-serif"; g.lineWidth = 1;
    g.beginPath(); g.moveTo(pad, 8); g.lineTo(pad, H - pad); g.lineTo(W - 8, H - pad); g.stroke();
    const last = Math.max(1, Number(form.elements.epochs.value) || 1, ...epochs.map((e) => e.epoch));
    const x = (epoch) => pad + (W - pad - 8) * epoch / last;
    const y = (a) => H - pad - (H - pad - 8) * a;
    for (const a of [0, 0.25, 0.5, 0.75, 1]) g.fillText(`${Math.round(100 * a)}%`, 2, y(a) + 4);
    g.fillText("epoch", W - 44, H - 8);
    for (let e = 0; e <= last; e += Math.ceil(last / 10)) g.fillText(String(e), x(e) - 3, H - pad + 14);
    for (const [key, colour] of [["validation_accuracy", "#2a5db0"], ["train_accuracy", "#d2691e"]]) {
      const points = epochs.filter((e) => e[key] !== undefined && e[key] !== null);
      g.strokeStyle = colour; g.fillStyle = colour; g.lineWidth = 2; g.beginPath();
      points.forEach((e, i) => (i ? g.lineTo : g.moveTo).call(g, x(e.epoch), y(e[key])));
      g.stroke();
      points.forEach((e) => { g.beginPath(); g.arc(x(e.epoch), y(e[key]), 3, 0, 2 * Math.PI); g.fill(); });
    }
    g.fillStyle = "#2a5db0"; g.fillText("validation", W - 160, 20);
    g.fillStyle = "#d2691e"; g.fillText("training", W - 80, 20);
  }

  function show(epoch) {
    epochs.push(epoch);
    const tr = document.createElement("tr");
    tr.dataset.epoch = epoch.epoch;
    const cell = (v, digits) => (v === undefined || v === null ? "" : Number(v).toFixed(digits));
    for (const text of [String(epoch.epoch), cell(100 * epoch.validation_accuracy, 2) + " %",
      epoch.train_accuracy === undefined ? "" : cell(100 * epoch.train_accuracy, 2) + " %",
      cell(epoch.train_cost, 4), cell(epoch.seconds, 1)]) {
      const td = document.createElement("td"); td.textContent = text; tr.appendChild(td);
    }
    rows.appendChild(tr);
    status.textContent = `epoch ${epoch.epoch}: ${(100 * epoch.validation_accuracy).toFixed(2)} % of the ` +
      "validation images right";
    status.dataset.accuracy = epoch.validation_accuracy;
    draw();
  }

  function running(on) {
    start.disabled = on; stop.disabled = !on;
    for (const input of form.elements) if (input.name) input.disabled = on;
  }

  function watch(id) {
    if (source) source.close();
    training = id; epochs = []; rows.replaceChildren(); draw();
    remember();
    running(true);
    source = new EventSource(`/api/train/${id}/events`);
    source.addEventListener("epoch", (e) => show(JSON.parse(e.data)));
    source.addEventListener("end", (e) => {
      const end = JSON.parse(e.data);
      source.close(); source = null; running(false);
      status.dataset.state = end.status;
      status.textContent += ` — ${end.status}`;
      if (end.error) error.textContent = end.error;
    });
    source.onerror = () => {
      if (source && source.readyState === EventSource.CLOSED) { running(false); error.textContent = "the server went away"; }
    };
  }

  start.addEventListener("click", async () => {
    error.textContent = ""; status.dataset.state = "";
    const response = await fetch("/api/train", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(settings()),
    });
    const result = await response.json();
    if (!response.ok) { error.textContent = message(result.detail); return; }
    watch(result.id);
  });

  stop.addEventListener("click", async () => {
    if (!training) return;
    const response = await fetch(`/api/train/${training}/stop`, { method: "POST" });
    if (!response.ok) error.textContent = message((await response.json()).detail);
    else status.textContent += " — stopping after this epoch";
  });

  // new settings are a new training: the link no longer names the one shown
  form.addEventListener("change", () => { if (!source) training = null; remember(); });

  // a link: its settings, and the training it names if the server still has it
  const q = new URL(location.href).searchParams;
  for (const input of form.elements) if (input.name && q.has(input.name)) input.value = q.get(input.name);
  draw();
  const id = q.get("training");
  if (id && /^[0-9a-f]+$/.test(id)) {
    fetch(`/api/train/${id}`).then(async (r) => {
      if (r.ok) { fill((await r.json()).settings); watch(id); } // the training's own settings beside its curve
      else { setParams({ training: null }); status.textContent = "that training is no longer on this server: start it again"; }
    });
  }
})();
