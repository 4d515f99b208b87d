// tiefnet serve: the page's behaviour (tabs, Handwriting, Grid world; the other views in their own
// scripts). Every request goes to this server only.
"use strict";

// the models this server has, for every view: [{name, app, kind}]
const servedModels = fetch("/api/models").then((r) => r.json());

// the options of a model <select>: the models of one application; the one named in the URL chosen
async function fillModels(select, app, param, none) {
  const models = (await servedModels).filter((m) => m.app === app);
  select.replaceChildren(...models.map((m) => {
    const option = document.createElement("option");
    option.value = m.name; option.textContent = `${m.name} (${m.kind})`;
    return option;
  }));
  const wanted = new URL(location.href).searchParams.get(param);
  if (wanted && models.some((m) => m.name === wanted)) select.value = wanted;
  if (!models.length && none) none.textContent = `no model here: start tiefnet serve --models DIR (${app} run folder)`;
  return models;
}

// put these settings into the URL (a link reproduces the page's state)
function setParams(values) {
  const url = new URL(location.href);
  for (const [k, v] of Object.entries(values)) {
    if (v === null || v === undefined || v === "") url.searchParams.delete(k); else url.searchParams.set(k, v);
  }
  history.replaceState(null, "", url);
}

// the JSON error of a response as one line
function message(detail) {
  return typeof detail === "string" ? detail : JSON.stringify(detail);
}

document.querySelectorAll("#tabs button").forEach((button) => {
  button.addEventListener("click", () => {
    document.querySelectorAll("#tabs button, .tab").forEach((e) => e.classList.remove("active"));
    button.classList.add("active");
    document.getElementById(button.dataset.tab).classList.add("active");
    setParams({ tab: button.dataset.tab });
  });
});

// ---- Handwriting: draw, send the canvas as PNG, show the prediction ----
const canvas = document.getElementById("canvas");
const ctx = canvas.getContext("2d");
let drawing = false, last = null;

function clearCanvas() {
  ctx.fillStyle = "black";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
}
clearCanvas();

function point(event) {
  const r = canvas.getBoundingClientRect();
  return [(event.clientX - r.left) * canvas.width / r.width, (event.clientY - r.top) * canvas.height / r.height];
}
canvas.addEventListener("pointerdown", (e) => { drawing = true; last = point(e); canvas.setPointerCapture(e.pointerId); });
canvas.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  const p = point(e);
  ctx.strokeStyle = "white"; ctx.lineWidth = 20; ctx.lineCap = "round"; ctx.lineJoin = "round";
  ctx.beginPath(); ctx.moveTo(last[0], last[1]); ctx.lineTo(p[0], p[1]); ctx.stroke();
  last = p;
});
canvas.addEventListener("pointerup", () => { if (drawing) { drawing = false; predict(); } });
document.getElementById("clear").addEventListener("click", () => {
  clearCanvas();
  asked++;
  document.getElementById("digit").textContent = "?";
  document.getElementById("probabilities").replaceChildren();
  document.getElementById("hidden").replaceChildren();
});

fillModels(document.getElementById("model"), "mnist", "model", document.getElementById("predict-error"));
document.getElementById("model").addEventListener("change", (e) => setParams({ model: e.target.value }));

function showPrediction(result) {
  document.getElementById("digit").textContent = result.digit;
  const bars = document.getElementById("probabilities");
  bars.replaceChildren(...result.probabilities.map((p, k) => {
    const row = document.createElement("div");
    row.className = "bar"; row.dataset.digit = k;
    const fill = document.createElement("span");
    fill.className = "fill"; fill.style.width = `${Math.round(200 * p)}px`;
    row.append(`${k} `, fill, ` ${p.toFixed(3)}`);
    return row;
  }));
  const hidden = document.getElementById("hidden");
  const title = document.getElementById("hidden-title");
  if (result.hidden) {
    title.textContent = `hidden layer: ${result.hidden.length} activations`;
    hidden.replaceChildren(...result.hidden.map((a) => {
      const unit = document.createElement("div");
      const level = Math.round(255 * Math.max(0, Math.min(1, a)));
      unit.className = "unit"; unit.style.background = `rgb(${level},${level},${level})`; unit.title = a.toFixed(3);
      return unit;
    }));
  } else if (result.feature_maps) {
    title.textContent = `first convolution: ${result.feature_maps.length} feature maps`;
    hidden.replaceChildren(...result.feature_maps.map((map) => {
      const c = document.createElement("canvas");
      c.className = "map"; c.width = map[0].length; c.height = map.length;
      const g = c.getContext("2d"), img = g.createImageData(c.width, c.height);
      const top = Math.max(1e-6, ...map.flat());
      map.flat().forEach((v, i) => { const l = Math.round(255 * v / top); img.data.set([l, l, l, 255], 4 * i); });
      g.putImageData(img, 0, 0);
      return c;
    }));
  }
}

let asked = 0; // predictions asked for: an answer to an older drawing is not shown over a newer one

async function predict() {
  const model = document.getElementById("model").value;
  const error = document.getElementById("predict-error");
  if (!model) return;
  const mine = ++asked;
  document.getElementById("digit").dataset.asked = mine;
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  const response = await fetch(`/api/predict/${encodeURIComponent(model)}/image`,
                               { method: "POST", headers: { "Content-Type": "image/png" }, body: blob });
  const result = await response.json();
  if (mine !== asked) return;
  const digit = document.getElementById("digit");
  digit.dataset.answered = mine;
  if (!response.ok) { error.textContent = message(result.detail); return; }
  error.textContent = "";
  showPrediction(result);
}

// ---- Grid world: value or policy iteration, step by step ----
// steps: shown; wanted: asked for (clicks faster than the answers still count, one step each);
// asked: requests sent, so that only the latest answer is drawn
const gw = { steps: 0, wanted: 0, converged: false, asked: 0 };
const gwInputs = ["gw-method", "gw-reward", "gw-gamma"].map((id) => document.getElementById(id));

async function gridworld(steps) {
  const method = gwInputs[0].value, reward = gwInputs[1].value, gamma = gwInputs[2].value;
  const mine = ++gw.asked;
  gw.wanted = steps;
  const response = await fetch(`/api/gridworld?method=${method}&reward=${reward}&gamma=${gamma}&steps=${steps}`);
  const state = await response.json();
  if (mine !== gw.asked) return null;
  const error = document.getElementById("gw-error");
  if (!response.ok) { error.textContent = message(state.detail); return null; }
  error.textContent = "";
  gw.steps = gw.wanted = state.steps; gw.converged = state.converged;
  drawBoard(state);
  setParams({ method, reward, gamma, steps: state.steps });
  return state;
}

function drawBoard(state) {
  const board = document.getElementById("gw-board");
  const byCell = new Map(state.cells.map((c, s) => [`${c[0]},${c[1]}`, s]));
  const rows = [];
  for (let y = state.height; y >= 1; y--) {
    const tr = document.createElement("tr");
    for (let x = 1; x <= state.width; x++) {
      const td = document.createElement("td");
      const s = byCell.get(`${x},${y}`);
      td.dataset.x = x; td.dataset.y = y;
      if (s === undefined) { td.className = "wall"; } else {
        const arrow = document.createElement("span");
        arrow.className = "arrow"; arrow.textContent = state.policy[s];
        td.append(arrow, state.utilities[s].toFixed(3));
        td.dataset.policy = state.policy[s];
      }
      tr.appendChild(td);
    }
    rows.push(tr);
  }
  board.replaceChildren(...rows);
  const name = (state.method === "value" ? "sweep" : "iteration") + (state.steps === 1 ? "" : "s");
  document.getElementById("gw-status").textContent =
    `${state.steps} ${name}${state.converged ? ": converged" : ""} (R = ${state.reward}, γ = ${state.gamma})`;
}

document.getElementById("gw-step").addEventListener("click", () => gridworld(gw.converged ? gw.steps : gw.wanted + 1));
document.getElementById("gw-run").addEventListener("click", () => gridworld(10000));
document.getElementById("gw-reset").addEventListener("click", () => gridworld(1));
gwInputs.forEach((input) => input.addEventListener("input", () => {
  document.getElementById("gw-reward-out").textContent = gwInputs[1].value;
  document.getElementById("gw-gamma-out").textContent = gwInputs[2].value;
  gridworld(Math.max(1, gw.steps));
}));

// the state in the URL: a link reproduces it
(function restore() {
  const q = new URL(location.href).searchParams;
  if (q.get("method")) gwInputs[0].value = q.get("method");
  if (q.get("reward")) gwInputs[1].value = q.get("reward");
  if (q.get("gamma")) gwInputs[2].value = q.get("gamma");
  document.getElementById("gw-reward-out").textContent = gwInputs[1].value;
  document.getElementById("gw-gamma-out").textContent = gwInputs[2].value;
  gridworld(Number(q.get("steps")) || 1);
  const tab = document.querySelector(`#tabs button[data-tab="${q.get("tab")}"]`);
  if (tab) tab.click();
})();
