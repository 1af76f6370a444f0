// fer-tf's page: photos or webcam frames -> POST /v1/analyze -> boxes, labels, probability bars, smile.
"use strict";
const $ = (id) => document.getElementById(id);
let colours = {};          // model name -> {class: colour}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function headers(extra = {}) {
  const key = sessionStorage.getItem("fer_tf_api_key");
  return key ? { ...extra, "Authorization": "Bearer " + key } : extra;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers || {}) });
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (response.status === 401 || response.status === 403) {
    $("key-label").hidden = false;
  }
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

async function waitReady() {
  for (;;) {
    const response = await fetch("/healthz").catch(() => null);
    if (response && response.ok) return;
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function loadModels() {
  await waitReady();
  const listing = await api("/v1/models");
  const select = $("model");
  select.innerHTML = "";
  for (const model of listing.models) {
    if (model.kind !== "classifier" || model.classes.includes("smile")) continue;
    colours[model.name] = Object.fromEntries(model.classes.map((c, i) => [c, model.colours[i]]));
    const option = new Option(`${model.name} (v${model.version})`, model.name);
    option.selected = model.name === listing.default;
    select.add(option);
  }
  setStatus("Ready: choose photos or use the webcam.");
  document.body.dataset.ready = "true";
}

function query() {
  const params = new URLSearchParams({ model: $("model").value, detector: $("detector").value });
  if ($("landmarks").checked) params.set("landmarks", "dlib");
  return params.toString();
}

async function analyze(blob, name) {
  return api("/v1/analyze?" + query(), {
    method: "POST", body: blob, headers: { "Content-Type": blob.type || "application/octet-stream" },
  }).then((result) => ({ ...result, source: name }));
}

function draw(canvas, image, result) {
  const scale = Math.min(2, 640 / image.width);   // small photos drawn larger, big ones fit
  canvas.width = Math.round(image.width * scale);
  canvas.height = Math.round(image.height * scale);
  const g = canvas.getContext("2d");
  g.drawImage(image, 0, 0, canvas.width, canvas.height);
  const palette = colours[result.model] || {};
  g.lineWidth = 3;
  g.font = "bold 15px system-ui, sans-serif";
  for (const face of result.faces) {
    const [l, t, r, b] = face.box.map((v) => v * scale);
    const colour = palette[face.label] || "#3367d6";
    g.strokeStyle = colour;
    g.strokeRect(l, t, r - l, b - t);
    const text = `${face.face}: ${face.label}` + (face.smile !== undefined ? ` · smile ${face.smile.toFixed(2)}` : "");
    const width = g.measureText(text).width + 8;
    g.fillStyle = colour;
    g.fillRect(l, Math.max(0, t - 20), width, 20);
    g.fillStyle = "#fff";
    g.fillText(text, l + 4, Math.max(15, t - 5));
    if (face.landmarks) {
      g.fillStyle = "#00e000";
      for (const [x, y] of face.landmarks) g.fillRect(x * scale - 1, y * scale - 1, 2, 2);
    }
  }
}

function bars(face, palette) {
  const div = document.createElement("div");
  div.className = "face";
  div.dataset.label = face.label;
  const title = document.createElement("div");
  title.className = "title";
  title.textContent = `Face ${face.face}: ${face.label}`;
  div.append(title);
  const rows = Object.entries(face.probabilities).sort((a, b) => b[1] - a[1]);
  if (face.smile !== undefined) rows.push(["smile", face.smile]);
  for (const [name, p] of rows) {
    const row = document.createElement("div");
    row.className = "bar";
    row.innerHTML = `<span></span><span class="track"><span class="fill"></span></span><span class="value"></span>`;
    row.children[0].textContent = name;
    row.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    row.querySelector(".fill").style.background = name === "smile" ? "#ffbf00" : (palette[name] || "#3367d6");
    row.children[2].textContent = p.toFixed(2);
    div.append(row);
  }
  return div;
}

function render(container, image, result) {
  container.innerHTML = "";
  container.dataset.faces = String(result.faces.length);
  const canvas = document.createElement("canvas");
  draw(canvas, image, result);
  const side = document.createElement("div");
  side.className = "faces";
  const heading = document.createElement("h3");
  heading.textContent = `${result.source}: ${result.faces.length} face(s)` + (result.note ? ` — ${result.note}` : "");
  side.append(heading);
  const palette = colours[result.model] || {};
  for (const face of result.faces) side.append(bars(face, palette));
  container.append(canvas, side);
}

async function handleFiles(files) {
  for (const file of files) {
    const card = document.createElement("div");
    card.className = "result";
    card.textContent = `${file.name}: analysing…`;
    $("results").prepend(card);
    try {
      const result = await analyze(file, file.name);     // the server's refusal, if any, first
      const image = await createImageBitmap(file);
      render(card, image, result);
      setStatus(`${file.name}: ${result.faces.length} face(s) in ${result.seconds.toFixed(2)} s`);
    } catch (error) {
      card.textContent = `${file.name}: ${error.message}`;
      card.classList.add("failed");
      setStatus(`${file.name}: ${error.message}`, true);
    }
  }
}

let stream = null;
async function toggleWebcam() {
  if (stream) {
    stream.getTracks().forEach((t) => t.stop());
    stream = null;
    $("live").hidden = true;
    $("webcam").textContent = "Use the webcam";
    return;
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
  } catch (error) {
    setStatus(`webcam: ${error.message}`, true);
    return;
  }
  $("video").srcObject = stream;
  $("live").hidden = false;
  $("webcam").textContent = "Stop the webcam";
  const grab = document.createElement("canvas");
  while (stream) {
    const video = $("video");
    if (video.videoWidth) {
      grab.width = video.videoWidth;
      grab.height = video.videoHeight;
      grab.getContext("2d").drawImage(video, 0, 0);
      const blob = await new Promise((r) => grab.toBlob(r, "image/jpeg", 0.85));
      try {
        const result = await analyze(blob, "webcam");
        render($("live-result"), await createImageBitmap(blob), result);
      } catch (error) {
        setStatus(`webcam: ${error.message}`, true);
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

$("files").addEventListener("change", (e) => handleFiles([...e.target.files]));
$("webcam").addEventListener("click", toggleWebcam);
$("api-key").addEventListener("change", (e) => {
  sessionStorage.setItem("fer_tf_api_key", e.target.value);
  loadModels().catch((error) => setStatus(error.message, true));
});
const drop = $("drop");
for (const type of ["dragenter", "dragover"]) drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
for (const type of ["dragleave", "drop"]) drop.addEventListener(type, () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); handleFiles([...e.dataTransfer.files]); });
loadModels().catch((error) => setStatus(error.message, true));
