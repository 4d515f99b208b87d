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
  let picture = null;

  // the picture, and over it the attention weights of one word (bilinear: the grid is coarse)
  function paint(target, alpha) {
    const g = target.getContext("2d");
    g.imageSmoothingEnabled = false;
    g.drawImage(picture, 0, 0, target.width, target.height);
    if (!alpha) return;
    const rows = alpha.length, cols = alpha[0].length;
    const top = Math.max(...alpha.flat(), 1e-9);
    const small = document.createElement("canvas");
    small.width = cols; small.height = rows;
    const sg = small.getContext("2d"), img = sg.createImageData(cols, rows);
    alpha.flat().forEach((a, i) => img.data.set([255, 255, 255, Math.round(255 * a / top)], 4 * i));
    sg.putImageData(img, 0, 0);
    g.fillStyle = "rgba(0, 0, 0, 0.55)"; g.fillRect(0, 0, target.width, target.height);
    g.globalCompositeOperation = "screen";
    g.imageSmoothingEnabled = true;
    g.drawImage(small, 0, 0, target.width, target.height);
    g.globalCompositeOperation = "source-over";
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
    error.textContent = "";
    const response = await fetch(url, options);
    const result = await response.json();
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
