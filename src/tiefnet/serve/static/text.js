// tiefnet serve, "Text": a char-rnn's sample, shown character by character as the server draws it
// (the response is read as a stream). The settings are in the URL.
"use strict";

(function () {
  const model = document.getElementById("text-model");
  const prime = document.getElementById("text-prime");
  const temperature = document.getElementById("text-temperature");
  const length = document.getElementById("text-length");
  const seed = document.getElementById("text-seed");
  const out = document.getElementById("text-out");
  const error = document.getElementById("text-error");
  const go = document.getElementById("text-go");
  const stop = document.getElementById("text-stop");
  let controller = null;

  function remember() {
    document.getElementById("text-temperature-out").textContent = temperature.value;
    setParams({ textmodel: model.value, prime: prime.value, temperature: temperature.value,
                length: length.value, textseed: seed.value });
  }

  go.addEventListener("click", async () => {
    error.textContent = ""; out.textContent = ""; out.dataset.done = "false";
    const body = { prime: prime.value, length: Number(length.value), temperature: Number(temperature.value) };
    if (seed.value !== "") body.seed = Number(seed.value);
    controller = new AbortController();
    go.disabled = true; stop.disabled = false;
    try {
      const response = await fetch(`/api/text/${encodeURIComponent(model.value)}`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
        signal: controller.signal,
      });
      if (!response.ok) { error.textContent = message((await response.json()).detail); return; }
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        out.textContent += value;
      }
      out.dataset.done = "true";
    } catch (e) {
      if (e.name !== "AbortError") error.textContent = String(e);
    } finally { go.disabled = false; stop.disabled = true; controller = null; }
  });
  stop.addEventListener("click", () => controller && controller.abort());
  for (const input of [model, prime, temperature, length, seed]) input.addEventListener("input", remember);

  const q = new URL(location.href).searchParams;
  if (q.has("prime")) prime.value = q.get("prime");
  if (q.has("temperature")) temperature.value = q.get("temperature");
  if (q.has("length")) length.value = q.get("length");
  if (q.has("textseed")) seed.value = q.get("textseed");
  document.getElementById("text-temperature-out").textContent = temperature.value;
  fillModels(model, "charrnn", "textmodel", error);
})();
