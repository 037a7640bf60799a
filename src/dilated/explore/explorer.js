// dilated explorer: the WaveNet tree of an editable 1-D conv stack, with live geometry and design proposals.
// Self-contained: no network, no libraries. The arithmetic below is a port of dilated.geometry (Keras semantics)
// and dilated.design; tests/test_explore.py runs random stacks through both and compares.
"use strict";

// ---- geometry (dilated.geometry, keras semantics) -----------------------------------------------------------
const geometry = (() => {
  const PADDINGS = ["causal", "same", "valid"];

  function span(layer) { return layer.dilation * (layer.kernel_size - 1) + 1; }

  function describe(layer, index) {
    return `layer ${index} (${layer.kind} k=${layer.kernel_size} d=${layer.dilation} s=${layer.stride} ` +
      `${typeof layer.padding === "number" ? "pad=" + layer.padding : layer.padding})`;
  }

  function validate(layer, index) {
    const where = describe(layer, index);
    for (const key of ["kernel_size", "stride", "dilation"]) {
      const v = layer[key];
      if (!Number.isInteger(v) || v < 1) throw new Error(`${where}: ${key} must be an int >= 1, got ${v}`);
    }
    if (!["conv", "maxpool", "avgpool"].includes(layer.kind)) throw new Error(`${where}: unknown kind`);
    const p = layer.padding;
    if (typeof p === "number") {
      if (!Number.isInteger(p) || p < 0) throw new Error(`${where}: padding must be an int >= 0`);
    } else if (!PADDINGS.includes(p) || (layer.kind !== "conv" && p === "causal")) {
      throw new Error(`${where}: padding '${p}' is not supported`);
    }
    if (layer.kind !== "conv" && layer.dilation !== 1) throw new Error(`${where}: Keras pooling has no dilation`);
    if (layer.stride > 1 && layer.dilation > 1) {
      throw new Error(`${where}: Keras refuses stride=${layer.stride} together with dilation=${layer.dilation}`);
    }
    if (layer.kind === "conv" && (!Number.isInteger(layer.channels) || layer.channels < 1)) {
      throw new Error(`${where}: channels must be an int >= 1`);
    }
  }

  function paddingAmounts(layer, length) {
    const p = layer.padding;
    if (typeof p === "number") return [p, p];
    if (p === "valid") return [0, 0];
    if (p === "causal") return [span(layer) - 1, 0];
    const out = Math.ceil(length / layer.stride);
    const total = Math.max(0, (out - 1) * layer.stride + span(layer) - length);
    return [Math.floor(total / 2), total - Math.floor(total / 2)];
  }

  function outputLength(layer, length, index) {
    const [left, right] = paddingAmounts(layer, length);
    const padded = length + left + right;
    if (padded < span(layer)) {
      throw new Error(`${describe(layer, index)} needs at least ${span(layer) - left - right} input steps, ` +
        `got ${length}`);
    }
    return Math.floor((padded - span(layer)) / layer.stride) + 1;
  }

  // One row per layer: input_length, output_length, pad_left, pad_right, receptive_field, jump, start.
  function stackGeometry(layers, inputLength) {
    if (!Number.isInteger(inputLength) || inputLength < 1) throw new Error("input length must be an int >= 1");
    const rows = [];
    let length = inputLength, field = 1, jump = 1, start = 0;
    layers.forEach((layer, i) => {
      validate(layer, i);
      const [left, right] = paddingAmounts(layer, length);
      const out = outputLength(layer, length, i);
      field += (span(layer) - 1) * jump;
      start -= left * jump;
      jump *= layer.stride;
      rows.push({layer, input_length: length, output_length: out, pad_left: left, pad_right: right,
        receptive_field: field, jump, start});
      length = out;
    });
    return rows;
  }

  function receptiveField(layers) {
    let field = 1, jump = 1;
    for (const layer of layers) { field += (span(layer) - 1) * jump; jump *= layer.stride; }
    return field;
  }

  // Steps of row r-1 (padding included) that output `index` of the row's layer reads.
  function reads(row, index) {
    const first = index * row.layer.stride - row.pad_left;
    const taps = [];
    for (let k = 0; k < row.layer.kernel_size; k++) taps.push(first + k * row.layer.dilation);
    return taps;
  }

  // dilated.geometry.dependencies: rows[0] are the input steps feeding the output, padding excluded.
  function dependencies(layers, inputLength, outputIndex) {
    const geo = stackGeometry(layers, inputLength);
    const last = geo.length ? geo[geo.length - 1].output_length : inputLength;
    if (!(outputIndex >= 0 && outputIndex < last)) throw new Error(`output_index must be in [0, ${last})`);
    let current = [outputIndex];
    const rows = [current];
    for (let r = geo.length - 1; r >= 0; r--) {
      const below = new Set();
      for (const t of current) {
        for (const s of reads(geo[r], t)) if (s >= 0 && s < geo[r].input_length) below.add(s);
      }
      current = [...below].sort((a, b) => a - b);
      rows.unshift(current);
    }
    return rows;
  }

  // Parameters of the stack as dilated layers (conv: weight + bias; pools: none), from `inputChannels`.
  function params(layers, inputChannels) {
    let total = 0, channels = inputChannels;
    for (const layer of layers) {
      if (layer.kind === "conv") { total += channels * layer.channels * layer.kernel_size + layer.channels; channels = layer.channels; }
    }
    return total;
  }

  return {span, validate, paddingAmounts, outputLength, stackGeometry, receptiveField, reads, dependencies, params};
})();

// ---- design (dilated.design) ---------------------------------------------------------------------------------
const design = (() => {
  const BLOCKS = {plain: 1, residual1: 1, residual2: 2};
  const CRITERIA = ["layers", "params", "flops", "overshoot"];

  function blockCost(block, inChannels, channels, k) {
    const conv = inChannels * channels * k;
    const skip = inChannels !== channels ? inChannels * channels : 0;
    const skipParams = skip ? skip + channels : 0;
    if (block === "plain") return [conv + channels, conv];
    if (block === "residual1") return [conv + channels + skipParams, conv + skip];
    const second = channels * channels * k;
    return [conv + second + 4 * channels + skipParams, conv + second + skip];
  }

  function isHoleFree(k, dilations) {
    let field = 1;
    for (const d of [...dilations].sort((a, b) => a - b)) { if (d > field) return false; field += (k - 1) * d; }
    return true;
  }

  function maxSum(layers, spread, cap, start = 0) {
    let total = start;
    for (let placed = 0; placed < layers; placed++) {
      const term = Math.min(cap, 1 + spread * total);
      if (term === cap) return total + cap * (layers - placed) - start;
      total += term;
    }
    return total - start;
  }

  function schedule(layers, total, spread, cap) {
    if (!(layers <= total && total <= maxSum(layers, spread, cap))) return null;
    let lo = Math.ceil(total / layers), hi = cap;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (maxSum(layers, spread, mid) >= total) hi = mid; else lo = mid + 1;
    }
    const largest = lo, chosen = [];
    let prefix = 0;
    for (let position = 0; position < layers; position++) {
      const rest = layers - position - 1;
      const d = Math.min(largest, 1 + spread * prefix, Math.floor((total - prefix) / (rest + 1)));
      if (d < (chosen.length ? chosen[chosen.length - 1] : 1) ||
          total - prefix - d > maxSum(rest, spread, largest, prefix + d)) {
        throw new Error(`no schedule for ${layers} blocks summing to ${total}`);
      }
      chosen.push(d); prefix += d;
    }
    return chosen;
  }

  function fewestLayers(needed, spread, cap) {
    let total = 0, layers = 0;
    while (total < needed) {
      const term = Math.min(cap, 1 + spread * total);
      if (term === cap) return layers + Math.ceil((needed - total) / cap);
      total += term; layers++;
    }
    return layers;
  }

  function check(name, value, minimum) {
    if (!Number.isInteger(value) || value < minimum) throw new Error(`design: ${name} must be an int >= ${minimum}`);
  }

  // Same arguments and ranking as dilated.design.design; returns plain objects.
  function propose({receptive_field, kernel_size, max_layers = null, channels = 32, max_dilation = null,
                    block = "plain", input_channels = 1, top = 5, sort_by = CRITERIA}) {
    check("receptive_field", receptive_field, 2);
    const kernels = Array.isArray(kernel_size) ? kernel_size : [kernel_size];
    kernels.forEach((k) => check("kernel_size", k, 2));
    check("channels", channels, 1); check("input_channels", input_channels, 1); check("top", top, 1);
    if (max_layers !== null) check("max_layers", max_layers, 1);
    if (max_dilation !== null) check("max_dilation", max_dilation, 1);
    if (!(block in BLOCKS)) throw new Error(`design: block must be one of ${Object.keys(BLOCKS).join(", ")}`);
    const order = [...sort_by, ...CRITERIA.filter((c) => !sort_by.includes(c))];
    const proposals = [];
    for (const k of kernels) {
      const spread = BLOCKS[block] * (k - 1);
      const needed = Math.ceil((receptive_field - 1) / spread);
      const cap = max_dilation !== null ? max_dilation : needed;
      const fewest = fewestLayers(needed, spread, cap);
      const last = max_layers === null ? fewest + top - 1 : Math.min(max_layers, fewest + top - 1);
      for (let layers = fewest; layers <= last; layers++) {
        const dilations = schedule(layers, Math.max(needed, layers), spread, cap);
        if (dilations === null) continue;
        let params = 0, flops = 0, width = input_channels;
        for (const _ of dilations) {
          const [p, macs] = blockCost(block, width, channels, k);
          params += p; flops += 2 * macs; width = channels;
        }
        const field = 1 + spread * dilations.reduce((a, b) => a + b, 0);
        proposals.push({kernel_size: k, dilations, block, channels, input_channels, receptive_field: field,
          target: receptive_field, overshoot: field - receptive_field, layers: dilations.length, params, flops,
          max_dilation: dilations[dilations.length - 1]});
      }
    }
    if (!proposals.length) {
      throw new Error(`design: receptive field ${receptive_field} is unreachable with at most ${max_layers} ` +
        `${block} blocks` + (max_dilation !== null ? ` and dilations <= ${max_dilation}` : ""));
    }
    const key = (p) => [...order.map((c) => p[c]), p.max_dilation, p.kernel_size, ...p.dilations.map((d) => -d)];
    const compare = (a, b) => {
      const ka = key(a), kb = key(b);
      for (let i = 0; i < Math.max(ka.length, kb.length); i++) {
        const x = ka[i] === undefined ? -Infinity : ka[i], y = kb[i] === undefined ? -Infinity : kb[i];
        if (x !== y) return x - y;
      }
      return 0;
    };
    return proposals.sort(compare).slice(0, top);
  }

  return {BLOCKS, blockCost, isHoleFree, maxSum, schedule, propose};
})();

// ---- YAML export (dilated._resolve stack config, or a dilated_stack model config) ------------------------------
function stackYaml(state) {
  const lines = [`name: ${state.name || "explorer"}`, `input: [${state.inputChannels}, ${state.inputLength}]` +
    "          # (channels, time)", "layers:"];
  for (const l of state.layers) {
    const type = l.kind === "conv" ? "conv1d" : l.kind === "maxpool" ? "maxpool1d" : "avgpool1d";
    const parts = [`type: ${type}`];
    if (l.kind === "conv") parts.push(`channels: ${l.channels}`);
    parts.push(`kernel_size: ${l.kernel_size}`);
    if (l.stride !== 1 || l.kind !== "conv") parts.push(`stride: ${l.stride}`);
    if (l.dilation !== 1) parts.push(`dilation: ${l.dilation}`);
    parts.push(`padding: ${l.padding}`);
    lines.push(`  - {${parts.join(", ")}}`);
  }
  return lines.join("\n") + "\n";
}

// A `model: dilated_stack` config (dilated train reads it) when the stack is stride-1 causal convs of one kernel
// size and one width; null otherwise.
function modelYaml(state) {
  const ls = state.layers;
  if (!ls.length || ls.some((l) => l.kind !== "conv" || l.stride !== 1 || l.padding !== "causal" ||
    l.kernel_size !== ls[0].kernel_size || l.channels !== ls[0].channels)) return null;
  const lines = ["model: dilated_stack", "options:"];
  if (state.inputChannels !== 1) lines.push(`  input_channels: ${state.inputChannels}`);
  lines.push(`  channels: ${ls[0].channels}`, `  kernel_size: ${ls[0].kernel_size}`,
    `  dilations: [${ls.map((l) => l.dilation).join(", ")}]`, "  block: plain");
  return lines.join("\n") + "\n";
}

// ---- analysis of the current stack ---------------------------------------------------------------------------
function analyse(state) {
  const rows = geometry.stackGeometry(state.layers, state.inputLength);
  const lengths = [state.inputLength, ...rows.map((r) => r.output_length)];
  const last = rows.length ? rows[rows.length - 1] : {receptive_field: 1, jump: 1, start: 0, output_length: state.inputLength};
  const outLength = last.output_length;
  const index = Math.min(Math.max(state.outputIndex < 0 ? outLength + state.outputIndex : state.outputIndex, 0), outLength - 1);
  const fed = geometry.dependencies(state.layers, state.inputLength, index)[0];
  const first = last.start + index * last.jump;
  const spanEnd = first + last.receptive_field - 1;
  const inside = [];
  for (let s = Math.max(first, 0); s <= Math.min(spanEnd, state.inputLength - 1); s++) inside.push(s);
  const fedSet = new Set(fed);
  const holes = inside.filter((s) => !fedSet.has(s));
  return {rows, lengths, receptive_field: last.receptive_field, jump: last.jump, output_length: outLength,
    index, fed, holes, field: [first, spanEnd], params: geometry.params(state.layers, state.inputChannels)};
}

// Fed lags of one output well inside a long input (as dilated.design.explain_holes), for the coverage line.
function coverage(layers) {
  const field = geometry.receptiveField(layers);
  let jump = 1;
  for (const l of layers) jump *= l.stride;
  const length = 3 * field + 4 * jump;
  const rows = geometry.stackGeometry(layers, length);
  const last = rows.length ? rows[rows.length - 1] : null;
  if (!last) return {field: 1, fed: 1};
  const index = Math.floor(last.output_length / 2);
  return {field, fed: geometry.dependencies(layers, length, index)[0].length};
}

// ---- the tree (SVG) ------------------------------------------------------------------------------------------
const SVG_NS = "http://www.w3.org/2000/svg";
const MAX_STEPS = 64;

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function placement(rows) {
  let x0 = 0, dx = 1;
  const out = [[x0, dx]];
  for (const g of rows) {
    const s = geometry.span(g.layer);
    const causal = g.layer.padding === "causal" || (g.pad_left === s - 1 && s > 1 && g.pad_right === 0);
    const offset = causal ? s - 1 : (s - 1) / 2;
    x0 = x0 + dx * (offset - g.pad_left); dx = dx * g.layer.stride;
    out.push([x0, dx]);
  }
  return out;
}

function drawTree(svg, state, a) {
  svg.textContent = "";
  const n = a.rows.length;
  const [f0, f1] = [Math.max(a.field[0], 0), Math.min(a.field[1], state.inputLength - 1)];
  const width = Math.min(state.inputLength, MAX_STEPS);
  let lo, hi;
  if (f1 - f0 + 1 >= width) { hi = f1; lo = f1 - width + 1; } else {
    hi = Math.min(state.inputLength - 1, f1 + Math.floor((width - (f1 - f0 + 1)) / 2)); lo = Math.max(0, hi - width + 1); hi = lo + width - 1;
  }
  const place = placement(a.rows);
  // the tree: per row, the steps (padding included) that feed the output
  const tree = Array.from({length: n + 1}, () => new Set());
  tree[n].add(a.index);
  for (let r = n; r >= 1; r--) {
    const g = a.rows[r - 1];
    for (const t of tree[r]) if (t >= 0 && t < g.output_length) for (const s of geometry.reads(g, t)) tree[r - 1].add(s);
  }
  const step = 14, rowGap = 62, left = 150, top = 34;
  const xLo = lo === 0 ? -Infinity : lo - 0.5, xHi = hi === state.inputLength - 1 ? Infinity : hi + 0.5;
  const pads = a.rows.map((g) => [g.pad_left, g.pad_right]).concat([[0, 0]]);
  const visible = [];
  let minX = lo, maxX = hi;
  for (let r = 0; r <= n; r++) {
    const [x0, dx] = place[r];
    let first = -pads[r][0], last = a.lengths[r] + pads[r][1] - 1;
    if (xLo > -Infinity) first = Math.max(first, Math.ceil((xLo - x0) / dx - 1e-9));
    if (xHi < Infinity) last = Math.min(last, Math.floor((xHi - x0) / dx + 1e-9));
    const idx = [];
    for (let i = first; i <= last; i++) idx.push(i);
    visible.push(idx);
    if (idx.length) { minX = Math.min(minX, x0 + dx * idx[0]); maxX = Math.max(maxX, x0 + dx * idx[idx.length - 1]); }
  }
  const X = (r, i) => left + (place[r][0] + place[r][1] * i - minX) * step;
  const Y = (r) => top + (n - r) * rowGap;
  const w = left + (maxX - minX) * step + 30, h = top + n * rowGap + 70;
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  // field band and holes on the input row
  if (f1 >= f0) {
    const bx0 = Math.max(X(0, Math.max(f0, lo)) - step / 2, 0), bx1 = X(0, Math.min(f1, hi)) + step / 2;
    el("rect", {x: bx0, y: Y(0) - 11, width: bx1 - bx0, height: 22, rx: 4, class: "band"}, svg);
    el("path", {d: `M${bx0},${Y(0) + 24} v6 H${bx1} v-6`, class: "bracket"}, svg);
    const label = el("text", {x: (bx0 + bx1) / 2, y: Y(0) + 46, class: "bracket-label"}, svg);
    label.textContent = `receptive field = ${a.receptive_field} steps` + (f1 - f0 + 1 > width ? ` (newest ${width} drawn)` : "");
  }
  const inVisible = (r, i) => visible[r].length && i >= visible[r][0] && i <= visible[r][visible[r].length - 1];
  const edges = el("g", {class: "edges"}, svg), lit = el("g", {class: "edges lit"}, svg), nodes = el("g", {}, svg);
  for (let r = 1; r <= n; r++) {
    const g = a.rows[r - 1];
    for (const t of visible[r]) {
      if (t < 0 || t >= g.output_length) continue;
      for (const s of geometry.reads(g, t)) {
        if (!inVisible(r - 1, s)) continue;
        const on = tree[r].has(t);
        el("line", {x1: X(r, t), y1: Y(r), x2: X(r - 1, s), y2: Y(r - 1)}, on ? lit : edges);
      }
    }
  }
  const holes = new Set(a.holes);
  for (let r = 0; r <= n; r++) {
    for (const i of visible[r]) {
      const padding = i < 0 || i >= a.lengths[r];
      let cls = padding ? "node padding" : tree[r].has(i) ? "node lit" : "node";
      if (r === 0 && holes.has(i)) cls = "node hole";
      if (r === n && i === a.index) cls += " output";
      el("circle", {cx: X(r, i), cy: Y(r), r: padding ? 4 : 5, class: cls}, nodes);
    }
    const label = el("text", {x: 8, y: Y(r) - 4, class: "row-label"}, svg);
    label.textContent = r === 0 ? "input" : `${r - 1}: ${a.rows[r - 1].layer.kind}`;
    const detail = el("text", {x: 8, y: Y(r) + 10, class: "row-detail"}, svg);
    detail.textContent = r === 0 ? `T=${state.inputLength}` :
      `RF ${a.rows[r - 1].receptive_field} · jump ${a.rows[r - 1].jump} · T=${a.lengths[r]}`;
  }
}

// ---- the page ------------------------------------------------------------------------------------------------
function createExplorer(root, initial) {
  const state = {name: initial.name, inputChannels: initial.input_channels, inputLength: initial.input_length,
    layers: initial.layers.map((l) => ({...l})), outputIndex: -1, saved: null};
  const $ = (id) => root.querySelector("#" + id);

  function parseValue(field, text) {
    if (field === "padding") return /^\d+$/.test(text) ? Number(text) : text;
    if (field === "kind") return text;
    return /^-?\d+$/.test(text.trim()) ? Number(text) : NaN;
  }

  function layerRow(layer, i) {
    const tr = document.createElement("tr");
    const cell = (html) => { const td = document.createElement("td"); td.append(html); tr.append(td); return td; };
    const num = document.createElement("span"); num.textContent = String(i); cell(num);
    const kind = document.createElement("select");
    for (const k of ["conv", "maxpool", "avgpool"]) kind.add(new Option(k, k, false, layer.kind === k));
    kind.dataset.layer = i; kind.dataset.field = "kind"; cell(kind);
    for (const field of ["kernel_size", "dilation", "stride", "padding", "channels"]) {
      const input = document.createElement("input");
      input.value = String(layer[field] ?? ""); input.dataset.layer = i; input.dataset.field = field;
      if (field === "padding") input.style.width = "4.6em";
      if (field === "channels" && layer.kind !== "conv") input.disabled = true;
      if (field === "padding") input.setAttribute("list", "paddings");
      cell(input);
    }
    const tools = document.createElement("span");
    for (const [label, action, title] of [["\u2191", "up", "move up"], ["\u2193", "down", "move down"], ["\u2715", "remove", "remove"]]) {
      const b = document.createElement("button");
      b.textContent = label; b.title = title; b.dataset.layer = i; b.dataset.action = action; tools.append(b);
    }
    cell(tools);
    return tr;
  }

  function renderTable() {
    const body = $("layers");
    body.textContent = "";
    state.layers.forEach((l, i) => body.append(layerRow(l, i)));
  }

  function update() {
    const error = $("error");
    let a;
    try {
      if (!state.layers.length) throw new Error("the stack is empty: add a layer");
      a = analyse(state);
      error.textContent = "";
    } catch (e) {
      error.textContent = e.message;
      for (const id of ["rf", "jump", "outlen", "params", "coverage"]) $(id).textContent = "-";
      return;
    }
    $("rf").textContent = String(a.receptive_field);
    $("jump").textContent = String(a.jump);
    $("outlen").textContent = String(a.output_length);
    $("params").textContent = a.params.toLocaleString("en-US");
    const cov = coverage(state.layers);
    $("coverage").textContent = `${cov.fed} of ${cov.field}`;
    $("holes-note").textContent = cov.fed < cov.field ?
      `${cov.field - cov.fed} steps under the field never feed an output (holes, marked in red)` : "no holes";
    $("output-index").max = String(a.output_length - 1);
    $("output-index").value = String(a.index);
    $("output-label").textContent = `output t=${a.index}`;
    drawTree($("tree"), state, a);
    $("yaml").value = stackYaml(state);
    const model = modelYaml(state);
    $("model-yaml").value = model || "# only for stride-1 causal convs of one kernel size and one width";
    const strided = state.layers.some((l) => l.stride > 1);
    $("toggle").textContent = strided ? "strided \u2192 dilated" : "dilated \u2192 strided";
    $("compare").textContent = counterpart(state, strided ? "dilated" : "strided");
  }

  root.addEventListener("input", (event) => {
    const t = event.target;
    if (t.id === "input-length" || t.id === "input-channels") {
      const v = parseValue("n", t.value);
      if (t.id === "input-length") state.inputLength = v; else state.inputChannels = v;
    } else if (t.id === "output-index") {
      state.outputIndex = Number(t.value);
    } else if (t.dataset.layer !== undefined && t.dataset.field) {
      const layer = state.layers[Number(t.dataset.layer)];
      layer[t.dataset.field] = parseValue(t.dataset.field, t.value);
      if (t.dataset.field === "kind") {
        if (layer.kind !== "conv" && layer.padding === "causal") layer.padding = "valid";
        if (layer.kind !== "conv") layer.dilation = 1;
        renderTable();
      }
    } else return;
    update();
  });

  root.addEventListener("click", (event) => {
    const b = event.target.closest("button");
    if (!b) return;
    const i = Number(b.dataset.layer);
    const ls = state.layers;
    if (b.dataset.action === "up" && i > 0) [ls[i - 1], ls[i]] = [ls[i], ls[i - 1]];
    else if (b.dataset.action === "down" && i < ls.length - 1) [ls[i + 1], ls[i]] = [ls[i], ls[i + 1]];
    else if (b.dataset.action === "remove") ls.splice(i, 1);
    else if (b.id === "add") {
      const prev = ls[ls.length - 1];
      ls.push({kind: "conv", kernel_size: prev ? prev.kernel_size : 2, dilation: prev ? prev.dilation * 2 : 1,
        stride: 1, padding: "causal", channels: prev && prev.kind === "conv" ? prev.channels : 8});
    } else if (b.id === "toggle") {
      for (const l of ls) [l.stride, l.dilation] = [l.dilation, l.stride];
    } else if (b.id === "propose") { propose(); return; }
    else if (b.dataset.proposal !== undefined) { use(state.proposals[Number(b.dataset.proposal)]); }
    else if (b.id === "download") { download(); return; }
    else return;
    state.outputIndex = -1;
    renderTable(); update();
  });

  // The numbers of the stack with every layer's stride and dilation swapped (the example's comparison).
  function counterpart(state, label) {
    const swapped = state.layers.map((l) => ({...l, stride: l.dilation, dilation: l.stride}));
    try {
      const b = analyse({...state, layers: swapped});
      return `${label}: receptive field ${b.receptive_field}, jump ${b.jump}, output length ${b.output_length}`;
    } catch (e) { return `${label}: ${e.message}`; }
  }

  function propose() {
    const out = $("proposals"), note = $("design-error");
    out.textContent = ""; note.textContent = "";
    const value = (id) => $(id).value.trim();
    const optional = (id) => value(id) === "" ? null : parseValue("n", value(id));
    try {
      const kernels = value("design-kernel").split(",").map((s) => parseValue("n", s));
      state.proposals = design.propose({receptive_field: parseValue("n", value("design-target")),
        kernel_size: kernels.length === 1 ? kernels[0] : kernels, max_layers: optional("design-layers"),
        max_dilation: optional("design-dilation"), channels: parseValue("n", value("design-channels")),
        block: value("design-block"), input_channels: state.inputChannels});
    } catch (e) { note.textContent = e.message; return; }
    state.proposals.forEach((p, i) => {
      const tr = document.createElement("tr");
      for (const text of [i + 1, p.layers, p.kernel_size, p.receptive_field, p.overshoot, p.params.toLocaleString("en-US"),
        p.flops.toLocaleString("en-US"), p.dilations.join(", ")]) {
        const td = document.createElement("td"); td.textContent = String(text); tr.append(td);
      }
      const td = document.createElement("td"), b = document.createElement("button");
      b.textContent = "use"; b.dataset.proposal = i; td.append(b); tr.append(td);
      out.append(tr);
    });
  }

  // A proposal as editable layers: residual blocks become their convs (the skips add no steps).
  function use(p) {
    state.layers = [];
    for (const d of p.dilations) {
      for (let j = 0; j < design.BLOCKS[p.block]; j++) {
        state.layers.push({kind: "conv", kernel_size: p.kernel_size, dilation: d, stride: 1, padding: "causal",
          channels: p.channels});
      }
    }
    state.inputLength = Math.max(state.inputLength, p.receptive_field);
    $("input-length").value = String(state.inputLength);
  }

  function download() {
    const link = document.createElement("a");
    link.href = "data:text/yaml;charset=utf-8," + encodeURIComponent($("yaml").value);
    link.download = (state.name || "stack") + ".yaml";
    root.append(link); link.click(); link.remove();
  }

  $("input-length").value = String(state.inputLength);
  $("input-channels").value = String(state.inputChannels);
  $("design-target").value = String(geometry.receptiveField(state.layers));
  const kernels = state.layers.filter((l) => l.kind === "conv" && l.kernel_size > 1).map((l) => l.kernel_size);
  if (kernels.length) $("design-kernel").value = String(kernels[0]);
  const conv = state.layers.find((l) => l.kind === "conv");
  if (conv) $("design-channels").value = String(conv.channels);
  $("notes").textContent = (initial.notes || []).join("; ");
  renderTable(); update();
  return {state, update};
}

window.dilatedGeometry = geometry;
window.dilatedDesign = design;
window.dilatedExport = {stackYaml, modelYaml};
window.dilatedAnalyse = analyse;
window.dilatedCoverage = coverage;
window.addEventListener("DOMContentLoaded", () => {
  const initial = JSON.parse(document.getElementById("initial-stack").textContent);
  window.dilatedExplorer = createExplorer(document.getElementById("explorer"), initial);
});
