// tiefnet serve, "Play": a game against an AlphaZero agent. The server keeps no game: every request
// sends the moves so far; the URL holds them too, so a link is the game.
"use strict";

(function () {
  const agentSelect = document.getElementById("play-agent");
  const side = document.getElementById("play-side");
  const sims = document.getElementById("play-sims");
  const boardDiv = document.getElementById("play-board");
  const status = document.getElementById("play-status");
  const error = document.getElementById("play-error");
  const passButton = document.getElementById("play-pass");
  const visitsTable = document.getElementById("play-visits");
  const nuText = document.getElementById("play-nu");
  let position = null, busy = false, asked = 0;

  // the position after these moves; the agent answers there when it is its turn. Only the answer to
  // the latest request is shown (a new game may start while the agent still searches the old one).
  async function send(moves) {
    const mine = ++asked, agent = agentSelect.value;
    busy = true; error.textContent = "";
    const body = { moves, reply: moves.length % 2 !== Number(side.value) };
    if (sims.value) body.simulations = Number(sims.value);
    if (body.reply) status.textContent = "the agent thinks…";
    try {
      const response = await fetch(`/api/play/${encodeURIComponent(agent)}`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      const result = await response.json();
      if (mine !== asked) return;
      if (!response.ok) { error.textContent = message(result.detail); return; }
      position = result;
      draw();
      setParams({ agent, you: side.value, sims: sims.value, moves: result.moves.join(",") });
    } finally { if (mine === asked) busy = false; }
  }

  function humanMoves(action) {
    if (busy || !position || position.terminal) return;
    if (position.to_move !== Number(side.value)) return;
    if (!position.legal.includes(action)) { error.textContent = "that move is not legal here"; return; }
    send([...position.moves, action]);
  }

  function draw() {
    const p = position, H = p.height, W = p.width;
    const counts = new Map(((p.agent && p.agent.visits) || []).map((v) => [v.action, v]));
    const table = document.createElement("table");
    table.className = `board ${p.game}`;
    const rowsOrder = [...Array(H).keys()];
    if (p.game === "go") rowsOrder.reverse(); // Go: row 1 at the bottom
    const lastAgent = p.agent ? p.agent.action : null;
    for (const r of rowsOrder) {
      const tr = document.createElement("tr");
      for (let c = 0; c < W; c++) {
        const td = document.createElement("td");
        const action = p.game === "connect4" ? c : r * W + c;
        const stone = p.board[r][c];
        td.dataset.row = r; td.dataset.col = c; td.dataset.action = action;
        if (stone) {
          const s = document.createElement("span");
          s.className = `stone ${stone > 0 ? "first" : "second"}`;
          td.appendChild(s);
        }
        // the visit count of the agent's moves, in the cell the move took (Connect Four: its column, top row)
        const visit = counts.get(action);
        if (visit && (p.game !== "connect4" || r === 0)) {
          const n = document.createElement("small"); n.className = "visits"; n.textContent = visit.N; td.appendChild(n);
        }
        if (p.game !== "connect4" && action === lastAgent) td.classList.add("last");
        td.addEventListener("click", () => humanMoves(action));
        tr.appendChild(td);
      }
      table.appendChild(tr);
    }
    boardDiv.replaceChildren(table);
    passButton.hidden = p.pass_action === null;
    const you = Number(side.value) === 0 ? "first" : "second";
    if (p.terminal) {
      status.textContent = `game over after ${p.moves.length} moves: ${p.result}` +
        (p.result.startsWith(you) ? " — you win" : p.result === "draw" ? "" : " — the agent wins");
    } else {
      status.textContent = p.to_move === Number(side.value) ? "your move" : "the agent thinks…";
    }
    status.dataset.terminal = p.terminal; status.dataset.moves = p.moves.length;
    if (p.agent) {
      nuText.textContent = `the agent played ${p.agent.name}: ν = ${p.agent.nu.toFixed(3)} (the network's value ` +
        `of the position for it), search value ${p.agent.value.toFixed(3)}, ${p.agent.simulations} simulations`;
      const head = "<tr><th>move</th><th>N</th><th>Q</th><th>P</th></tr>";
      visitsTable.innerHTML = head;
      for (const v of [...p.agent.visits].sort((a, b) => b.N - a.N)) {
        const tr = document.createElement("tr");
        for (const t of [v.name, v.N, v.Q === null ? "" : v.Q.toFixed(3), v.P.toFixed(3)]) {
          const td = document.createElement("td"); td.textContent = t; tr.appendChild(td);
        }
        visitsTable.appendChild(tr);
      }
    } else if (!p.moves.length || p.terminal) { nuText.textContent = ""; visitsTable.replaceChildren(); }
  }

  passButton.addEventListener("click", () => position && humanMoves(position.pass_action));
  document.getElementById("play-new").addEventListener("click", () => send([]));
  side.addEventListener("change", () => document.getElementById("play-new").click());
  agentSelect.addEventListener("change", () => document.getElementById("play-new").click());

  fillModels(agentSelect, "alphazero", "agent", error).then((agents) => {
    if (!agents.length) return;
    const q = new URL(location.href).searchParams;
    if (q.get("you") === "1") side.value = "1";
    if (q.get("sims")) sims.value = q.get("sims");
    const moves = (q.get("moves") || "").split(",").filter((m) => /^\d+$/.test(m)).map(Number);
    send(moves);
  });
})();
