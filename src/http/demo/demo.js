// The demo page: sends the chosen photo to /v1/classify, /v1/detect or /v1/segment as the raw
// request body and draws what comes back. Plain browser JavaScript, no build step.
const $ = (selector) => document.querySelector(selector);

const TASKS = {
  classification: { route: '/v1/classify', query: { topk: '5' }, render: renderClassification },
  detection: { route: '/v1/detect', query: { minScore: '0.4' }, render: renderDetection },
  segmentation: { route: '/v1/segment', query: {}, render: renderSegmentation },
};

let models = [];

const taskOf = () => $('input[name=task]:checked').value;

function setStatus(text, isError = false) {
  $('#status').textContent = text;
  $('#status').classList.toggle('error', isError);
}

function fillModels() {
  const task = taskOf();
  const choices = models.filter((m) => m.task === task);
  $('#model').replaceChildren(...choices.map((m) => new Option(`${m.name} (${m.resolution}x${m.resolution})`, m.name)));
  $('#run').disabled = choices.length === 0;
  if (choices.length === 0) setStatus(`This instance has no ${task} model loaded (see MODELS).`, true);
  else setStatus($('#photo').files.length ? 'Ready.' : 'Pick a photo.');
}

const millions = (n) => (n >= 1e9 ? `${(n / 1e9).toFixed(3)} G` : `${(n / 1e6).toFixed(2)} M`);
const ms = (n) => `${n.toFixed(1)} ms`;
const percent = (x) => `${(100 * x).toFixed(1)}%`;

async function run(event) {
  event.preventDefault();
  const file = $('#photo').files[0];
  if (!file) return setStatus('Pick a photo first.', true);
  const task = taskOf();
  const { route, query, render } = TASKS[task];
  const params = new URLSearchParams({ ...query, model: $('#model').value });
  $('#run').disabled = true;
  setStatus(`Running ${task}…`);
  try {
    // The photo is decoded in parallel with the request; the server sniffs the format itself.
    const photo = createImageBitmap(file);
    const started = performance.now();
    const response = await fetch(`${route}?${params}`, { method: 'POST', body: file, headers: { 'content-type': file.type || 'application/octet-stream' } });
    const body = await response.json();
    const roundTrip = performance.now() - started;
    if (!response.ok) throw new Error(`${response.status} ${body.error?.code}: ${body.error?.message}`);

    const canvas = $('#canvas');
    const bitmap = await photo;
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    canvas.getContext('2d').drawImage(bitmap, 0, 0);

    const { decodeMs, queueMs, inferenceMs, totalMs } = body.timings;
    $('#latency').textContent = ms(roundTrip);
    $('#server-time').textContent = `${ms(totalMs)} (decode ${ms(decodeMs)}, queue ${ms(queueMs)}, inference ${ms(inferenceMs)})`;
    $('#macs').textContent = millions(body.multiplyAdds);
    $('#model-used').textContent = body.model.name;
    $('#results').replaceChildren();
    await render(body, canvas);
    $('#output').hidden = false;
    document.body.dataset.done = task;
    setStatus(`${task}: ${file.name}, ${body.image.width}x${body.image.height} ${body.image.format}.`);
  } catch (err) {
    setStatus(err.message, true);
  } finally {
    $('#run').disabled = false;
  }
}

function listItem(...children) {
  const li = document.createElement('li');
  li.append(...children);
  $('#results').append(li);
  return li;
}

function span(className, text) {
  const el = document.createElement('span');
  el.className = className;
  el.textContent = text;
  return el;
}

function renderClassification(body) {
  $('#results-title').textContent = 'Top classes';
  for (const { label, score } of body.predictions) {
    const bar = span('bar', '');
    bar.style.width = percent(score);
    listItem(`${label} `, span('score', percent(score)), bar);
  }
}

/** A distinct, stable colour per class id. */
const hueColour = (id, alpha = 1) => `hsla(${(id * 137.5) % 360}, 85%, 45%, ${alpha})`;

function renderDetection(body, canvas) {
  $('#results-title').textContent = `${body.detections.length} object${body.detections.length === 1 ? '' : 's'}`;
  const ctx = canvas.getContext('2d');
  // Lines and text in proportion to the photo, since the canvas is shown scaled down.
  const unit = Math.max(2, Math.round(Math.max(canvas.width, canvas.height) / 300));
  ctx.lineWidth = unit;
  ctx.font = `${unit * 7}px system-ui, "DejaVu Sans", sans-serif`;
  ctx.textBaseline = 'top';
  for (const { label, classId, score, box } of body.detections) {
    const colour = hueColour(classId);
    ctx.strokeStyle = colour;
    ctx.strokeRect(box.x, box.y, box.width, box.height);
    const text = `${label} ${percent(score)}`;
    const width = ctx.measureText(text).width + 2 * unit;
    const top = box.y >= unit * 9 ? box.y - unit * 9 : box.y;
    ctx.fillStyle = colour;
    ctx.fillRect(box.x - unit / 2, top, width, unit * 9);
    ctx.fillStyle = '#fff';
    ctx.fillText(text, box.x + unit / 2, top + unit);
    const swatch = span('swatch', '');
    swatch.style.background = colour;
    listItem(swatch, `${label} `, span('score', percent(score)));
  }
}

/** PASCAL VOC's palette: the class id's bits spread over the high bits of red, green and blue. */
function vocColour(classId) {
  const rgb = [0, 0, 0];
  for (let bit = 7, id = classId; id > 0; bit--, id >>= 3) {
    for (let channel = 0; channel < 3; channel++) rgb[channel] |= ((id >> channel) & 1) << bit;
  }
  return rgb;
}

async function renderSegmentation(body, canvas) {
  $('#results-title').textContent = 'Classes';
  const ids = body.legend.map((entry) => entry.classId);
  const mask = await createImageBitmap(await (await fetch(`data:${body.mask.mediaType};base64,${body.mask.data}`)).blob());
  // Read the class map (grey value = class id) at the photo's size, then paint it in colours.
  const layer = new OffscreenCanvas(canvas.width, canvas.height);
  const lctx = layer.getContext('2d');
  lctx.drawImage(mask, 0, 0, canvas.width, canvas.height);
  const pixels = lctx.getImageData(0, 0, canvas.width, canvas.height);
  const palette = new Map(ids.map((id) => [id, vocColour(id)]));
  const data = pixels.data;
  for (let i = 0; i < data.length; i += 4) {
    // Nearest listed class, in case the browser's colour handling nudged a grey level.
    const id = ids.reduce((best, c) => (Math.abs(c - data[i]) < Math.abs(best - data[i]) ? c : best), ids[0] ?? 0);
    const [r, g, b] = palette.get(id) ?? [0, 0, 0];
    data.set([r, g, b, id === 0 ? 0 : 150], i);
  }
  lctx.putImageData(pixels, 0, 0);
  canvas.getContext('2d').drawImage(layer, 0, 0);
  for (const { label, classId, fraction } of body.legend) {
    const swatch = span('swatch', '');
    swatch.style.background = `rgb(${vocColour(classId).join(',')})`;
    listItem(swatch, `${label} `, span('score', percent(fraction)));
  }
}

async function start() {
  $('#controls').addEventListener('submit', run);
  for (const radio of document.querySelectorAll('input[name=task]')) radio.addEventListener('change', fillModels);
  $('#photo').addEventListener('change', fillModels);
  try {
    const response = await fetch('/v1/models');
    models = (await response.json()).models;
  } catch (err) {
    return setStatus(`Cannot list the models: ${err.message}`, true);
  }
  for (const radio of document.querySelectorAll('input[name=task]')) {
    radio.disabled = !models.some((m) => m.task === radio.value);
  }
  fillModels();
}

start();
