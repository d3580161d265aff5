// The demo page: draw on #pad with pointer events (mouse, pen, touch); when a stroke ends, send the
// pad's ink to POST /api/predict and show the answer: #prediction (its data-strokes attribute counts
// the strokes the shown answer covers), the ten bars, the 28x28 picture seen and the feature maps.
"use strict";

const LINE_WIDTH = 22;                   // pixels of the 280x280 pad: MNIST-like strokes
const LAYERS = { c1: "C1 · 6 maps, 28×28", s2: "S2 · 6 maps, 14×14", c3: "C3 · 16 maps, 10×10",
                 s4: "S4 · 16 maps, 5×5" };

const pad = document.getElementById("pad");
const ink = pad.getContext("2d", { willReadFrequently: true });
const prediction = document.getElementById("prediction");
const statusLine = document.getElementById("status");
const seen = document.getElementById("seen");
let last = null;                         // the pointer's previous position while drawing
let strokes = 0;                         // strokes since the last clear
let version = 0;                         // answers to older versions of the drawing are dropped

function position(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width, (event.clientY - box.top) * pad.height / box.height];
}

function segment(from, to) {
  ink.lineWidth = LINE_WIDTH;
  ink.lineCap = "round";
  ink.lineJoin = "round";
  ink.strokeStyle = "#111";
  ink.beginPath();
  ink.moveTo(from[0], from[1]);
  ink.lineTo(to[0], to[1]);
  ink.stroke();
}

pad.addEventListener("pointerdown", (event) => {
  if (event.pointerType === "mouse" && event.button !== 0) return;
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  last = position(event);
  segment(last, last);                   // a dot, even if the pointer does not move
});

pad.addEventListener("pointermove", (event) => {
  if (last === null) return;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
  for (const each of events.length ? events : [event]) {
    const point = position(each);
    segment(last, point);
    last = point;
  }
});

function endStroke() {
  if (last === null) return;
  last = null;
  strokes += 1;
  pad.dataset.strokes = String(strokes);
  send(strokes);
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

function inkRows() {                     // the alpha channel: 0 = background, 255 = ink (MNIST's convention)
  const data = ink.getImageData(0, 0, pad.width, pad.height).data;
  const rows = [];
  for (let y = 0; y < pad.height; y++) {
    const row = new Array(pad.width);
    for (let x = 0; x < pad.width; x++) row[x] = data[4 * (y * pad.width + x) + 3];
    rows.push(row);
  }
  return rows;
}

async function send(count) {
  const mine = ++version;
  statusLine.textContent = "Reading…";
  prediction.setAttribute("aria-busy", "true");
  try {
    const response = await fetch("/api/predict", { method: "POST", headers: { "Content-Type": "application/json" },
                                                   body: JSON.stringify({ canvas: inkRows() }) });
    const answer = await response.json();
    if (mine !== version) return;
    if (response.ok) show(answer);
    else forget(answer.error || `error ${response.status}`);
  } catch (error) {
    if (mine !== version) return;
    forget(`the server did not answer (${error.message})`);
  }
  prediction.dataset.strokes = String(count);
  prediction.removeAttribute("aria-busy");
}

function show(answer) {
  const scores = answer.penalties || answer.scores;
  prediction.textContent = String(answer.digit);
  const ranked = scores.map((s, d) => [s, d]).sort((a, b) => answer.penalties ? a[0] - b[0] : b[0] - a[0]);
  statusLine.textContent = `Read as ${answer.digit}; next best ${ranked[1][1]}.`;
  document.getElementById("scores-title").innerHTML = answer.penalties
    ? "RBF penalties <small>(lower = more likely)</small>" : "Scores <small>(logits; higher = more likely)</small>";
  drawBars(scores, answer.digit);
  drawPicture(seen, [answer.picture], 0, 255, grey);
  drawMaps(answer.maps);
}

function forget(message) {               // an answer that is not a reading: show why, keep nothing stale
  prediction.textContent = "";
  statusLine.textContent = message;
  clearPanels();
}

function drawBars(scores, digit) {
  const list = document.getElementById("scores");
  const top = Math.max(...scores.map(Math.abs)) || 1;
  list.replaceChildren(...scores.map((score, d) => {
    const item = document.createElement("li");
    item.className = d === digit ? "bar chosen" : "bar";
    item.innerHTML = `<span class="digit">${d}</span><span class="track"><span class="fill"></span></span>` +
                     `<span class="value">${score.toFixed(1)}</span>`;
    item.querySelector(".fill").style.width = `${(100 * Math.abs(score) / top).toFixed(1)}%`;
    return item;
  }));
}

function grey(v) { const g = 255 - v; return [g, g, g]; }   // ink dark on white

function diverging(v, top) {                                   // blue (negative) - white - red (positive)
  const t = Math.max(-1, Math.min(1, v / top));
  const end = t < 0 ? [33, 102, 172] : [178, 24, 43];
  return [0, 1, 2].map((i) => Math.round(247 + (end[i] - 247) * Math.abs(t)));
}

function drawPicture(canvas, maps, index, top, colour) {
  const values = maps[index];
  canvas.height = values.length;
  canvas.width = values[0].length;
  const context = canvas.getContext("2d");
  const image = context.createImageData(canvas.width, canvas.height);
  values.flat().forEach((v, i) => { image.data.set([...colour(v, top), 255], 4 * i); });
  context.putImageData(image, 0, 0);
}

function drawMaps(maps) {
  const box = document.getElementById("maps");
  box.replaceChildren();
  for (const [layer, title] of Object.entries(LAYERS)) {
    const top = Math.max(...maps[layer].flat(2).map(Math.abs)) || 1;
    const row = document.createElement("div");
    row.className = `layer ${layer}`;
    row.innerHTML = `<h3>${title} <small>scale ±${top.toFixed(2)}</small></h3><div class="cells"></div>`;
    maps[layer].forEach((_, k) => {
      const cell = document.createElement("canvas");
      cell.title = `${layer.toUpperCase()} map ${k}`;
      drawPicture(cell, maps[layer], k, top, diverging);
      row.querySelector(".cells").append(cell);
    });
    box.append(row);
  }
}

function clearPanels() {
  document.getElementById("scores").replaceChildren();
  document.getElementById("maps").replaceChildren();
  seen.getContext("2d").clearRect(0, 0, seen.width, seen.height);
}

document.getElementById("clear").addEventListener("click", () => {
  version += 1;
  strokes = 0;
  last = null;
  ink.clearRect(0, 0, pad.width, pad.height);
  pad.dataset.strokes = "0";
  prediction.textContent = "";
  prediction.dataset.strokes = "0";
  prediction.removeAttribute("aria-busy");
  statusLine.textContent = "Draw one digit, 0 to 9, with mouse, pen or finger.";
  clearPanels();
});
