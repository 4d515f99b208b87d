// tiefnet serve, "Captions and style": a caption with the attention of each word laid over the
// picture; a picture in a fast style transfer network's style.
"use strict";

(function () {
  // ---- captions ----
  const model = document.getElementById("cap-model");
  const split = document.getElementById("cap-split");
  const seed = document.getElementById("cap-seed");
  const canvas = document.getElementById("cap-canvas");
  const words = document.getElementById("cap-words");
  const references = document.getElementById("cap-references");
  const maps = document.getElementById("cap-maps");
  const error = document.getElementById("cap-error");
  let picture = null, asked = 0;

  // the picture with one word's attention weights alpha over it as an orange glow (the coarse grid of
  // alpha scaled up smoothly, as in Show, Attend and Tell's figures): the more weight, the more orange
  function paint(target, alpha) {
    const g = target.getContext("2d");
    g.imageSmoothingEnabled = false;
    g.drawImage(picture, 0, 0, target.width, target.height);
    if (!alpha) return;
    const rows = alpha.length, cols = alpha[0].length;
    const top = Math.max(...alpha.flat(), 1e-9);
    const mask = document.createElement("canvas");
    mask.width = cols; mask.height = rows;
    const mg = mask.getContext("2d"), img = mg.createImageData(cols, rows);
    alpha.flat().forEach((a, i) => img.data.set([255, 140, 0, Math.round(170 * a / top)], 4 * i));
    mg.putImageData(img, 0, 0);
    g.imageSmoothingEnabled = true;
    g.drawImage(mask, 0, 0, target.width, target.height);
  }

  function show(result) {
    picture = new Image();
    picture.onload = () => {
      paint(canvas, null);
      words.replaceChildren(...result.words.map((w, i) => {
        const span = document.createElement("span");
        span.className = "word"; span.textContent = w; span.dataset.index = i;
        if (result.attention) {
          span.addEventListener("mouseenter", () => paint(canvas, result.attention[i]));
          span.addEventListener("mouseleave", () => paint(canvas, null));
        }
        return span;
      }));
      words.dataset.caption = result.caption;
      references.textContent = result.references ? `the scene's captions: ${result.references.join(" | ")}` : "";
      maps.replaceChildren(...(result.attention || []).map((alpha, i) => {
        const figure = document.createElement("figure");
        const c = document.createElement("canvas"); c.width = 96; c.height = 96;
        paint(c, alpha);
        const caption = document.createElement("figcaption"); caption.textContent = result.words[i];
        figure.append(c, caption);
        return figure;
      }));
    };
    picture.src = result.image; // a data: URL from this server's answer
  }

  async function ask(url, options) {
    const mine = ++asked; // only the latest answer is shown
    error.textContent = "";
    const response = await fetch(url, options);
    const result = await response.json();
    if (mine !== asked) return;
    if (!response.ok) { error.textContent = message(result.detail); return; }
    show(result);
  }

  document.getElementById("cap-scene").addEventListener("click", () => {
    setParams({ capmodel: model.value, split: split.value, capseed: seed.value });
    ask(`/api/caption/${encodeURIComponent(model.value)}/scene?split=${split.value}&seed=${Number(seed.value) || 0}`);
  });
  document.getElementById("cap-file").addEventListener("change", (e) => {
    const file = e.target.files[0];
    if (file) ask(`/api/caption/${encodeURIComponent(model.value)}/image`,
                  { method: "POST", headers: { "Content-Type": file.type || "image/png" }, body: file });
  });

  const q = new URL(location.href).searchParams;
  if (q.get("split") === "compositional") split.value = "compositional";
  if (q.has("capseed")) seed.value = q.get("capseed");
  fillModels(model, "caption", "capmodel", error);

  // ---- style ----
  const styleModel = document.getElementById("style-model");
  const side = document.getElementById("style-side");
  const styleError = document.getElementById("style-error");
  const before = document.getElementById("style-in"), after = document.getElementById("style-out");
  let urls = [];

  document.getElementById("style-file").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    styleError.textContent = "";
    urls.forEach((u) => URL.revokeObjectURL(u));
    urls = [URL.createObjectURL(file)];
    before.src = urls[0]; before.style.maxWidth = `${side.value}px`;
    after.removeAttribute("src"); after.dataset.done = "false";
    const response = await fetch(`/api/style/${encodeURIComponent(styleModel.value)}?side=${Number(side.value) || 256}`,
                                 { method: "POST", headers: { "Content-Type": file.type || "image/png" }, body: file });
    if (!response.ok) { styleError.textContent = message((await response.json()).detail); return; }
    urls.push(URL.createObjectURL(await response.blob()));
    after.src = urls[1]; after.dataset.done = "true";
    setParams({ stylemodel: styleModel.value, styleside: side.value });
  });
  if (q.has("styleside")) side.value = q.get("styleside");
  fillModels(styleModel, "fast-style", "stylemodel", styleError);
})();
