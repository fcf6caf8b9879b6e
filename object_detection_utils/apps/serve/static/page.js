// The page: pictures in, one POST /v1/segment each; the score slider and class picker only redraw what was
// answered (no new request). Downloads are made here from the answer: a COCO file and one PNG per mask.
"use strict";

const PALETTE = [[230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180], [70, 240, 240],
                 [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [170, 110, 40], [128, 0, 0]];
const REQUEST_MIN_SCORE = "0.05";  // the slider filters from here without asking again

const $ = (id) => document.getElementById(id);
const pictures = [];  // {name, file, image, answer, masks: [canvas], error, item}
let current = null;
let requests = 0;

function setStatus(text) { $("status").textContent = text; }

function headers() {
  const token = $("token").value.trim();
  return token ? {Authorization: "Bearer " + token} : {};
}

// COCO compressed RLE (pycocotools' rleFrString) -> run lengths, zeros first, column-major.
function rleCounts(text) {
  const counts = [];
  let p = 0;
  while (p < text.length) {
    let x = 0, k = 0, more = 1;
    while (more) {
      const c = text.charCodeAt(p) - 48;
      x |= (c & 0x1f) << (5 * k);
      more = c & 0x20;
      p++; k++;
      if (!more && (c & 0x10)) x |= -1 << (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

// A mask as a canvas of its colour where set, transparent elsewhere.
function maskCanvas(rle, colour, alpha) {
  const [h, w] = rle.size;
  const canvas = document.createElement("canvas");
  canvas.width = w; canvas.height = h;
  const context = canvas.getContext("2d");
  const data = context.createImageData(w, h);
  let index = 0, value = 0;
  for (const run of rleCounts(rle.counts)) {
    if (value) {
      for (let i = index; i < index + run; i++) {
        const o = ((i % h) * w + Math.floor(i / h)) * 4;
        data.data[o] = colour[0]; data.data[o + 1] = colour[1]; data.data[o + 2] = colour[2]; data.data[o + 3] = alpha;
      }
    }
    index += run; value = 1 - value;
  }
  context.putImageData(data, 0, 0);
  return canvas;
}

function colourOf(classId) { return PALETTE[classId % PALETTE.length]; }

function visible(picture) {
  const minScore = parseFloat($("score").value);
  const shown = new Set([...document.querySelectorAll("#classes input:checked")].map((box) => box.value));
  return picture.answer.instances.map((instance, i) => [instance, i])
    .filter(([instance]) => instance.score >= minScore && shown.has(instance.class_name));
}

function draw() {
  const canvas = $("canvas");
  const context = canvas.getContext("2d");
  if (!current || !current.answer) { canvas.dataset.drawn = "0"; return; }
  canvas.width = current.image.naturalWidth; canvas.height = current.image.naturalHeight;
  context.drawImage(current.image, 0, 0);
  const shown = visible(current);
  const line = Math.max(1, Math.round(canvas.width / 400));
  for (const [instance, i] of [...shown].sort((a, b) => b[0].area - a[0].area)) {  // largest first: small stay visible
    if (current.masks[i]) context.drawImage(current.masks[i], 0, 0);
  }
  for (const [instance] of shown) {
    const [x1, y1, x2, y2] = instance.box;
    const colour = `rgb(${colourOf(instance.class_id).join(",")})`;
    context.strokeStyle = colour; context.lineWidth = line;
    context.strokeRect(x1, y1, x2 - x1, y2 - y1);
    context.font = `${12 * line}px sans-serif`;
    const label = `${instance.class_name} ${instance.score.toFixed(2)}`;
    context.fillStyle = colour;
    context.fillRect(x1, Math.max(0, y1 - 14 * line), context.measureText(label).width + 4 * line, 14 * line);
    context.fillStyle = "white";
    context.fillText(label, x1 + 2 * line, Math.max(11 * line, y1 - 3 * line));
  }
  canvas.dataset.drawn = String(shown.length);
  const kept = new Set(shown.map(([, i]) => i));
  for (const row of document.querySelectorAll("#instances tbody tr")) {
    row.classList.toggle("hidden", !kept.has(Number(row.dataset.index)));
  }
  $("download-coco").disabled = false;
  $("download-masks").disabled = shown.length === 0 || !current.masks.length;
}

function showClasses(picture) {
  const box = $("classes");
  const before = new Map([...box.querySelectorAll("input")].map((input) => [input.value, input.checked]));
  box.querySelectorAll("label").forEach((label) => label.remove());
  const names = [...new Set(picture.answer.instances.map((instance) => instance.class_name))].sort();
  for (const name of names) {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "checkbox"; input.value = name; input.checked = before.get(name) ?? true;
    input.addEventListener("change", draw);
    label.append(input, " " + name);
    box.append(label);
  }
}

function showInstances(picture) {
  const body = $("instances").querySelector("tbody");
  body.replaceChildren();
  picture.answer.instances.forEach((instance, i) => {
    const row = document.createElement("tr");
    row.dataset.index = String(i);
    const swatch = `<span class="swatch" style="background: rgb(${colourOf(instance.class_id).join(",")})"></span>`;
    row.innerHTML = `<td>${i + 1}</td><td>${swatch}</td><td>${instance.score.toFixed(3)}</td><td>${instance.area}</td>` +
      `<td>${instance.box.map((v) => Math.round(v)).join(", ")}</td><td></td>`;
    row.children[1].append(instance.class_name);  // text, never markup
    if (instance.mask) {
      const link = document.createElement("a");
      link.href = "#"; link.textContent = "PNG";
      link.addEventListener("click", (event) => { event.preventDefault(); downloadMask(picture, i); });
      row.children[5].append(link);
    }
    body.append(row);
  });
}

function select(picture) {
  current = picture;
  for (const other of pictures) other.item.classList.toggle("selected", other === picture);
  if (picture.error) { setStatus(picture.error); draw(); return; }
  if (!picture.answer) { setStatus(`Segmenting ${picture.name}…`); return; }
  showClasses(picture);
  showInstances(picture);
  const [h, w] = picture.answer.image_size;
  setStatus(`${picture.name}: ${picture.answer.instances.length} instances (${w}x${h}) from ${picture.answer.model}`);
  draw();
}

async function segment(picture) {
  const form = new FormData();
  form.append("image", picture.file, picture.name);
  form.append("min_score", REQUEST_MIN_SCORE);
  form.append("mask_format", "rle");
  requests++;
  document.body.dataset.requests = String(requests);
  try {
    const response = await fetch("v1/segment", {method: "POST", body: form, headers: headers()});
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
    picture.answer = answer;
    picture.masks = answer.instances.map((instance) =>
      instance.mask ? maskCanvas(instance.mask, colourOf(instance.class_id), 120) : null);
  } catch (error) {
    picture.error = `${picture.name}: ${error.message}`;
    picture.item.classList.add("failed");
  }
  if (current === picture) select(picture);
}

function loadImage(file) {
  return new Promise((resolve) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => resolve(null);
    image.src = URL.createObjectURL(file);
  });
}

async function addFiles(files) {
  for (const file of files) {
    const item = document.createElement("li");
    item.textContent = file.name;
    const picture = {name: file.name, file, image: null, answer: null, masks: [], error: null, item};
    item.addEventListener("click", () => select(picture));
    $("pictures").append(item);
    pictures.push(picture);
    picture.image = await loadImage(file);
    if (!picture.image) {
      picture.error = `${file.name}: the browser cannot show this picture`;
      item.classList.add("failed");
    }
    select(picture);
    if (picture.image) await segment(picture);
  }
}

function save(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

function stem(name) { return name.replace(/\.[^.]*$/, "") || "picture"; }

// A COCO dataset file of the instances shown: pycocotools' COCO() loads it (masks as RLE, scores kept).
function cocoDocument(picture) {
  const [height, width] = picture.answer.image_size;
  const shown = visible(picture);
  const categories = [...new Map(picture.answer.instances.map((instance) =>
    [instance.class_id, {id: instance.class_id, name: instance.class_name}])).values()].sort((a, b) => a.id - b.id);
  const annotations = shown.map(([instance], i) => {
    const [x1, y1, x2, y2] = instance.box;
    const annotation = {id: i + 1, image_id: 1, category_id: instance.class_id,
                        bbox: [x1, y1, x2 - x1, y2 - y1].map((v) => Math.round(v * 100) / 100),
                        area: instance.area, iscrowd: 0, score: instance.score};
    if (instance.mask) annotation.segmentation = instance.mask;
    return annotation;
  });
  return {info: {description: `instance-segmentation: ${picture.answer.model}`},
          images: [{id: 1, file_name: picture.name, width, height}], annotations, categories};
}

function downloadMask(picture, i) {
  const instance = picture.answer.instances[i];
  const [h, w] = instance.mask.size;
  const canvas = maskCanvas(instance.mask, [255, 255, 255], 255);
  const out = document.createElement("canvas");
  out.width = w; out.height = h;
  const context = out.getContext("2d");
  context.fillStyle = "black"; context.fillRect(0, 0, w, h);
  context.drawImage(canvas, 0, 0);
  out.toBlob((blob) => save(blob, `${stem(picture.name)}_${i + 1}_${instance.class_name}.png`), "image/png");
}

$("files").addEventListener("change", (event) => { addFiles([...event.target.files]); event.target.value = ""; });
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault(); drop.classList.remove("over");
  addFiles([...event.dataTransfer.files].filter((file) => file.type.startsWith("image/")));
});
$("score").addEventListener("input", () => { $("score-value").textContent = Number($("score").value).toFixed(2); draw(); });
$("download-coco").addEventListener("click", () => {
  if (current && current.answer) {
    save(new Blob([JSON.stringify(cocoDocument(current))], {type: "application/json"}), `${stem(current.name)}_coco.json`);
  }
});
$("download-masks").addEventListener("click", () => {
  if (current && current.answer) for (const [, i] of visible(current)) downloadMask(current, i);
});
$("token").value = sessionStorage.getItem("token") || "";
$("token").addEventListener("change", () => sessionStorage.setItem("token", $("token").value.trim()));
fetch("readyz").then((response) => response.json()).then((ready) => {
  $("model").textContent = ready.model ? `model: ${ready.model}` : (ready.error || "");
}).catch(() => { $("model").textContent = "server unreachable"; });
document.body.dataset.requests = "0";
