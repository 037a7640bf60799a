// dilated explorer: a view of the analysis `dilated summary` and `dilated draw` use (numbers, model graph, the
// tree of one output, zoomable over the whole input), and an editor for plain layer stacks. Self-contained: no
// network, no libraries. The editor's arithmetic is a port of dilated.geometry (Keras semantics) and
// dilated.design; tests/test_explore.py runs random stacks through both and compares.
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
    if (l.activation) parts.push(`activation: ${l.activation}`);
    lines.push(`  - {${parts.join(", ")}}`);
  }
  return lines.join("\n") + "\n";
}

// A `model: dilated_stack` config (dilated train reads it) when the stack is stride-1 causal convs + ReLU of one
// kernel size and one width (its plain blocks); null otherwise.
function modelYaml(state) {
  const ls = state.layers;
  if (!ls.length || ls.some((l) => l.kind !== "conv" || l.stride !== 1 || l.padding !== "causal" ||
    l.activation !== "relu" || l.kernel_size !== ls[0].kernel_size || l.channels !== ls[0].channels)) return null;
  const lines = ["model: dilated_stack", "options:"];
  if (state.inputChannels !== 1) lines.push(`  input_channels: ${state.inputChannels}`);
  lines.push(`  channels: ${ls[0].channels}`, `  kernel_size: ${ls[0].kernel_size}`,
    `  dilations: [${ls.map((l) => l.dilation).join(", ")}]`, "  block: plain");
  return lines.join("\n") + "\n";
}

// ---- fields (dilated.analysis.Field): step t = q * period + r reads phases[r] shifted by q * jump ---------------
const fields = (() => {
  const gcd = (a, b) => (b ? gcd(b, a % b) : a);
  function at(f, t) {
    const q = Math.floor(t / f.period), shift = q * f.jump;
    return f.phases[t - q * f.period].map((o) => o + shift);
  }
  function sorted(set) { return [...set].sort((a, b) => a - b); }
  function read(f, offsets) {
    const seen = new Set();
    for (const c of offsets) for (const s of at(f, c)) seen.add(s);
    return sorted(seen);
  }
  // What `outer` (over the steps of a row) sees of the row `inner` is over: Field.compose.
  function compose(outer, inner) {
    if (outer.jump === 0) return {period: outer.period, jump: 0, phases: outer.phases.map((o) => read(inner, o))};
    const repeats = inner.period / gcd(outer.jump, inner.period);
    const period = outer.period * repeats, jump = (repeats * outer.jump / inner.period) * inner.jump, phases = [];
    for (let rg = 0; rg < period; rg++) {
      const q0 = Math.floor(rg / outer.period);
      phases.push(read(inner, outer.phases[rg - q0 * outer.period].map((c) => c + q0 * outer.jump)));
    }
    return {period, jump, phases};
  }
  function union(a, b) {
    const period = a.period * b.period / gcd(a.period, b.period), jump = a.jump / a.period * period, phases = [];
    for (let r = 0; r < period; r++) phases.push(sorted(new Set([...at(a, r), ...at(b, r)])));
    return {period, jump, phases};
  }
  // One layer of a stack (a row of stackGeometry): output t reads t * stride - pad_left + k * dilation.
  function ofLayer(row) {
    const taps = [];
    for (let k = 0; k < row.layer.kernel_size; k++) taps.push(k * row.layer.dilation - row.pad_left);
    return {period: 1, jump: row.layer.stride, phases: [taps]};
  }
  return {at, compose, union, ofLayer};
})();

// ---- a view: the rows the page draws (row 0: the input) and the numbers it shows -------------------------------
// A row: {name, type, op, length, receptive_field, jump, params, x0, dx, block, sources: [[row, field], ...]}.

const WARNING = (length, field) => `WARNING: the input (${length} steps) is shorter than the receptive field ` +
  `(${field}); outputs see zero padding instead of history. Feed at least ${field} steps.`;

// The view of an editable stack, from the page's geometry (equal to dilated.geometry and to `dilated summary`).
function stackView(state) {
  if (!state.layers.length) throw new Error("the stack is empty: add a layer");
  const geo = geometry.stackGeometry(state.layers, state.inputLength);
  const placed = placement(geo);
  const rows = [{name: "input", type: "", op: "", length: state.inputLength, receptive_field: 1, jump: 1, params: 0,
    x0: 0, dx: 1, block: null, sources: []}];
  let module = 0, channels = state.inputChannels;
  geo.forEach((g, i) => {
    const l = g.layer, conv = l.kind === "conv";
    const params = conv ? channels * l.channels * l.kernel_size + l.channels : 0;
    if (conv) channels = l.channels;
    const op = `${l.kind} k=${l.kernel_size}` + (l.dilation > 1 ? ` d=${l.dilation}` : "") +
      (l.stride > 1 ? ` s=${l.stride}` : "") + ` ${typeof l.padding === "number" ? "pad=" + l.padding : l.padding}`;
    rows.push({name: String(module), type: conv ? (l.kernel_size === 1 ? "Dense" : "Conv1d") :
      (l.kind === "maxpool" ? "MaxPool1d" : "AvgPool1d"), op, length: g.output_length,
      receptive_field: g.receptive_field, jump: g.jump, params, x0: placed[i + 1][0], dx: placed[i + 1][1], block: null,
      sources: [[i, fields.ofLayer(g)]], layer: i});
    module += l.activation ? 2 : 1;
  });
  const last = geo[geo.length - 1];
  const fed = coverage(state.layers).fed;
  const numbers = {receptive_field: last.receptive_field, jump: last.jump, output_length: last.output_length,
    params: geometry.params(state.layers, state.inputChannels), fed,
    causal: last.start + last.receptive_field - 1 <= 0};
  const warning = last.receptive_field > state.inputLength ? WARNING(state.inputLength, last.receptive_field) : null;
  return {rows, numbers, warning, notes: []};
}

// The view of any analysed model, from `dilated summary`'s numbers and the graph layout of `dilated draw`.
function modelView(initial) {
  const s = initial.summary;
  const numbers = {receptive_field: s.receptive_field, jump: s.jump, output_length: s.output_length,
    params: s.total_params, fed: s.fed, causal: s.causal, at_least: s.at_least};
  return {rows: initial.graph ? initial.graph.rows : [], numbers, warning: s.warning,
    notes: [s.receptive_field_line, ...s.notes, ...(initial.graph ? initial.graph.notes : [])]};
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

// (x0, dx) per row of a stack: output t sits above its last input (causal) or the centre of its inputs.
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

// The rows shown with some blocks collapsed: each collapsed block shows one row (the last of its rows that a
// later part reads), and every shown row reads the shown rows under it through the hidden ones (fields composed).
function shownRows(rows, collapsed, hidePointwise = false) {
  const members = {};
  rows.forEach((r, i) => { if (r.block) (members[r.block] = members[r.block] || []).push(i); });
  const readBy = rows.map(() => new Set());
  rows.forEach((r, i) => r.sources.forEach(([s]) => readBy[s].add(i)));
  const stands = {};  // the row a collapsed block shows: the last one another block reads, else one read outside
  for (const [block, list] of Object.entries(members)) {
    const readers = (i) => [...readBy[i]].map((j) => rows[j].block);
    const toBlocks = list.filter((i) => readers(i).some((b) => b && b !== block));
    const out = list.filter((i) => readers(i).some((b) => b !== block));
    stands[block] = (toBlocks.length ? toBlocks : out.length ? out : list).at(-1);
  }
  const last = rows.length - 1;
  const pointwise = (r) => r.sources.every(([, f]) => f.period === 1 && f.jump === 1 && f.phases[0].length === 1 &&
    f.phases[0][0] === 0);
  const visible = rows.map((r, i) => (!r.block || !collapsed.has(r.block) || stands[r.block] === i) &&
    (!hidePointwise || i === 0 || i === last || !pointwise(r) || (r.block && collapsed.has(r.block))));
  const memo = new Map();
  function through(i) {  // source row -> field, over shown rows only
    if (memo.has(i)) return memo.get(i);
    const out = new Map();
    for (const [s, f] of rows[i].sources) {
      const parts = visible[s] ? [[s, f]] : [...through(s)].map(([t, g]) => [t, fields.compose(f, g)]);
      for (const [t, g] of parts) out.set(t, out.has(t) ? fields.union(out.get(t), g) : g);
    }
    memo.set(i, out);
    return out;
  }
  const shown = [];
  rows.forEach((r, i) => {
    if (!visible[i]) return;
    const collapsedBlock = r.block && collapsed.has(r.block);
    const ops = collapsedBlock ? members[r.block].map((j) => rows[j].op).filter((op) => op && !/k=1 /.test(op)) : [];
    shown.push({index: i, row: r, label: collapsedBlock ? `${r.block} (${members[r.block].length} layers)` : r.name,
      block: r.block, collapsed: collapsedBlock, sources: [...through(i)], op: ops.length ? ops.join(", ") : r.op});
  });
  return shown;
}

// The steps of one row (padding included) that feed an output: a mask over lo..hi, and how many.
class RowSteps {
  constructor(lo, hi) { this.lo = lo; this.mask = new Uint8Array(Math.max(hi - lo + 1, 0)); this.size = 0; }
  has(t) { const i = t - this.lo; return i >= 0 && i < this.mask.length && this.mask[i] === 1; }
  add(t) {
    const i = t - this.lo;
    if (i >= 0 && i < this.mask.length && this.mask[i] === 0) { this.mask[i] = 1; this.size++; }
  }
  values(first = this.lo, last = this.lo + this.mask.length - 1) {  // in order
    const out = [], mask = this.mask, lo = this.lo;
    for (let i = Math.max(first - lo, 0), end = Math.min(last - lo, mask.length - 1); i <= end; i++) if (mask[i]) out.push(i + lo);
    return out;
  }
}

// Per row, the lowest and highest step the rows above read (padding included: below 0 or past the end).
function readBounds(rows, sourcesOf = (i) => rows[i].sources) {
  const bounds = rows.map((r) => [0, r.length - 1]);
  rows.forEach((r, i) => {
    for (const [s, f] of sourcesOf(i)) {
      for (let t = 0; t < Math.min(f.period, r.length); t++) {
        const low = fields.at(f, t), high = fields.at(f, r.length - 1 - t);
        bounds[s] = [Math.min(bounds[s][0], low[0]), Math.max(bounds[s][1], high[high.length - 1])];
      }
    }
  });
  return bounds;
}

// Per row, the steps (padding included) that feed output `index` of the last row.
function litSteps(rows, index, bounds = readBounds(rows)) {
  const lit = rows.map((r, i) => new RowSteps(bounds[i][0], bounds[i][1]));
  lit[rows.length - 1].add(index);
  for (let r = rows.length - 1; r > 0; r--) {
    const steps = lit[r].values(0, rows[r].length - 1);  // padding reads nothing
    for (const [s, f] of rows[r].sources) {
      const into = lit[s];
      if (f.period === 1) {
        const phase = f.phases[0], jump = f.jump;
        for (const t of steps) { const base = t * jump; for (const o of phase) into.add(base + o); }
      } else {
        for (const t of steps) for (const v of fields.at(f, t)) into.add(v);
      }
    }
  }
  return lit;
}

// ---- the tree (canvas: zooms and pans over the whole input) ----------------------------------------------------
const COLORS = {lit: "#e8590c", litEdge: "rgba(232,89,12,.75)", node: "#ced4da", edge: "rgba(134,142,150,.35)",
  hole: "#c92a2a", band: "#fff0e0", text: "#212529", muted: "#6c757d", pad: "#adb5bd"};

function createTree(canvas) {
  const tree = {view: null, shown: [], lit: [], index: 0, from: 0, scale: 1, error: null, span: [0, 0]};
  const ctx = canvas.getContext("2d");
  const LEFT = 150, RIGHT = 14, TOP = 16, BOTTOM = 44;
  const width = () => canvas.clientWidth - LEFT - RIGHT;

  // rows fill the canvas's height (its flex share of the panel), at least MIN_GAP apart (the panel scrolls then)
  const MIN_GAP = 10;
  function rowGap() { return Math.min(56, (canvas.clientHeight - TOP - BOTTOM) / Math.max(tree.shown.length - 1, 1)); }

  function set(view, shown, index) {
    tree.view = view; tree.shown = shown; tree.error = null;
    tree.index = index;
    if (tree.boundsOf !== view.rows) { tree.bounds = readBounds(view.rows); tree.boundsOf = view.rows; }
    tree.shownBounds = readBounds(view.rows, (i) => (shown.find((item) => item.index === i) || {sources: []}).sources);
    tree.lit = litSteps(view.rows, index, tree.bounds);
    const input = tree.lit[0].values();
    tree.span = input.length ? [input[0], input[input.length - 1]] : [0, 0];
    tree.holes = [];  // input steps under the output's field that feed nothing
    for (let s = Math.max(tree.span[0], 0); s <= Math.min(tree.span[1], view.rows[0].length - 1); s++) {
      if (!tree.lit[0].has(s)) tree.holes.push(s);
    }
    canvas.style.flex = "1 1 0";
    const needed = TOP + BOTTOM + (shown.length - 1) * MIN_GAP;
    if (canvas.clientHeight < needed) canvas.style.flex = `0 0 ${needed}px`;
  }

  function fit(first, last) {
    const w = Math.max(width(), 50), steps = Math.max(last - first + 1, 1);
    tree.scale = Math.min(40, w / (steps * 1.04));
    tree.from = (first + last) / 2 - w / tree.scale / 2;
    draw();
  }

  function zoom(factor, atX) {
    const x = atX === undefined ? width() / 2 : atX - LEFT;
    const step = tree.from + x / tree.scale;
    const minimum = Math.min(Math.max(width(), 50) / ((tree.view ? tree.view.rows[0].length : 1) * 1.5), 0.05);
    tree.scale = Math.min(60, Math.max(minimum, tree.scale * factor));
    tree.from = step - x / tree.scale;
    draw();
  }

  function pan(pixels) { tree.from -= pixels / tree.scale; draw(); }

  function draw() {
    const started = performance.now();
    const ratio = window.devicePixelRatio || 1, w = canvas.clientWidth, h = canvas.clientHeight;
    canvas.width = Math.round(w * ratio); canvas.height = Math.round(h * ratio);
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = "12px system-ui, sans-serif";
    if (tree.error || !tree.view) {
      ctx.fillStyle = COLORS.hole;
      ctx.fillText(tree.error || "", 8, 20);
      tree.drawn = {nodes: 0, edges: 0, ms: performance.now() - started};
      return;
    }
    const rows = tree.view.rows, shown = tree.shown, gap = rowGap(), n = shown.length;
    const Y = (k) => TOP + (n - 1 - k) * gap;
    const X = (x) => LEFT + (x - tree.from) * tree.scale;
    const first = tree.from, last = tree.from + width() / tree.scale;
    const detailed = tree.scale >= 5;
    // the field band under the input row, with its bracket
    const [f0, f1] = tree.span;
    const bx0 = X(f0 - 0.5), bx1 = X(f1 + 0.5), y0 = Y(0);
    ctx.fillStyle = COLORS.band; ctx.fillRect(Math.max(bx0, LEFT), y0 - 9, Math.min(bx1, w) - Math.max(bx0, LEFT), 18);
    ctx.strokeStyle = "#a93f06"; ctx.beginPath();
    ctx.moveTo(bx0, y0 + 14); ctx.lineTo(bx0, y0 + 20); ctx.lineTo(bx1, y0 + 20); ctx.lineTo(bx1, y0 + 14); ctx.stroke();
    ctx.fillStyle = "#a93f06"; ctx.textAlign = "center";
    const top = rows[rows.length - 1], whole = tree.view.numbers.receptive_field;
    ctx.fillText(`receptive field = ${top.receptive_field} steps` + (top.receptive_field === whole ? "" :
      ` (at ${top.name}, the last row drawn; the model's: ${whole})`), (Math.max(bx0, LEFT) + Math.min(bx1, w)) / 2, y0 + 34);
    ctx.textAlign = "left";
    // which steps of a row lie in view, padding included (the steps the shown rows above read)
    const range = (item) => {
      const r = item.row, [lo, hi] = tree.shownBounds[item.index];
      const a = Math.max(lo, Math.ceil((first - 1 - r.x0) / r.dx)), b = Math.min(hi, Math.floor((last + 1 - r.x0) / r.dx));
      return [a, b];
    };
    const kOf = new Map(shown.map((item, k) => [item.index, k]));
    let nodes = 0, edges = 0;
    if (detailed) {
      const grey = new Path2D(), orange = new Path2D();
      for (let k = 1; k < n; k++) {
        const item = shown[k], r = item.row, [a, b] = range(item), lit = tree.lit[item.index];
        for (let t = Math.max(a, 0); t <= Math.min(b, r.length - 1); t++) {
          const on = lit.has(t);
          for (const [s, f] of item.sources) {
            const below = rows[s], ks = kOf.get(s);
            for (const v of fields.at(f, t)) {
              const path = on && tree.lit[s].has(v) ? orange : grey;
              path.moveTo(X(r.x0 + r.dx * t), Y(k)); path.lineTo(X(below.x0 + below.dx * v), Y(ks));
              edges++;
            }
          }
        }
      }
      ctx.lineWidth = 1; ctx.strokeStyle = COLORS.edge; ctx.stroke(grey);
      ctx.lineWidth = 1.6; ctx.strokeStyle = COLORS.litEdge; ctx.stroke(orange);
    }
    ctx.lineWidth = 1;
    const holes = new Set(detailed ? tree.holes : []);
    shown.forEach((item, k) => {
      const r = item.row, [a, b] = range(item), lit = tree.lit[item.index], y = Y(k);
      if (detailed) {
        for (let t = a; t <= b; t++) {
          const x = X(r.x0 + r.dx * t), padding = t < 0 || t >= r.length;
          ctx.beginPath(); ctx.arc(x, y, padding ? 3.5 : 4.5, 0, 2 * Math.PI);
          if (padding) { ctx.fillStyle = "#fff"; ctx.fill(); ctx.setLineDash([2, 1.5]); ctx.strokeStyle = COLORS.pad; ctx.stroke(); ctx.setLineDash([]); }
          else if (k === 0 && holes.has(t)) { ctx.fillStyle = "#fff"; ctx.fill(); ctx.lineWidth = 2; ctx.strokeStyle = COLORS.hole; ctx.stroke(); ctx.lineWidth = 1; }
          else { ctx.fillStyle = lit.has(t) ? COLORS.lit : COLORS.node; ctx.fill(); }
          nodes++;
        }
      } else {  // too many steps for circles: the row as a line, fed steps (and holes) as ticks, one per pixel
        ctx.fillStyle = COLORS.node;
        const xa = Math.max(X(r.x0 + r.dx * Math.max(a, 0)), LEFT), xb = Math.min(X(r.x0 + r.dx * Math.min(b, r.length - 1)), w);
        ctx.fillRect(xa, y - 1, Math.max(xb - xa, 1), 2);
        const ticks = (steps, color) => {
          ctx.fillStyle = color;
          let lastPixel = -1;
          for (const t of steps) {
            const px = Math.round(X(r.x0 + r.dx * t));
            if (px === lastPixel || px < LEFT) continue;
            ctx.fillRect(px, y - 5, 1, 10); lastPixel = px; nodes++;
          }
        };
        ticks(lit.values(a, b), COLORS.lit);
        if (k === 0) ticks(tree.holes.filter((t) => t >= a && t <= b), COLORS.hole);
      }
      if (k === n - 1) {  // the highlighted output
        const x = X(r.x0 + r.dx * tree.index);
        ctx.beginPath(); ctx.arc(x, y, 7, 0, 2 * Math.PI); ctx.lineWidth = 2.5; ctx.strokeStyle = "#a93f06"; ctx.stroke(); ctx.lineWidth = 1;
      }
      ctx.clearRect(0, y - gap / 2, LEFT - 4, gap);
      ctx.fillStyle = COLORS.text; ctx.font = "600 12px system-ui, sans-serif";
      const label = item.label.length > 22 ? "\u2026" + item.label.slice(-21) : item.label;
      ctx.fillText(label, 8, y + (gap >= 26 ? -2 : 4));
      if (gap >= 26) {
        ctx.fillStyle = COLORS.muted; ctx.font = "10px system-ui, sans-serif";
        ctx.fillText(k ? `RF ${r.receptive_field} \u00b7 jump ${r.jump} \u00b7 T=${r.length}` : `T=${r.length}`, 8, y + 11);
      }
      ctx.font = "12px system-ui, sans-serif";
    });
    tree.drawn = {nodes, edges, ms: performance.now() - started};
  }

  // zoom with the wheel (around the pointer), pan by dragging
  canvas.addEventListener("wheel", (event) => { event.preventDefault(); zoom(event.deltaY < 0 ? 1.25 : 0.8, event.offsetX); },
    {passive: false});
  let dragging = null;
  canvas.addEventListener("pointerdown", (event) => { dragging = event.clientX; canvas.setPointerCapture(event.pointerId); });
  canvas.addEventListener("pointermove", (event) => {
    if (dragging === null) return;
    pan(event.clientX - dragging); dragging = event.clientX;
  });
  canvas.addEventListener("pointerup", () => { dragging = null; });
  Object.assign(tree, {set, fit, zoom, pan, draw,
    fitField: () => fit(tree.span[0], tree.span[1]),
    fitInput: () => fit(0, tree.view.rows[0].length - 1),
    clear: (message) => { tree.view = null; tree.error = message; tree.lit = []; tree.holes = []; draw(); },
    visibleSteps: () => [tree.from, tree.from + width() / tree.scale],
    stepAt: (x) => tree.from + (x - LEFT) / tree.scale});
  return tree;
}

// ---- the model graph (SVG): rows as boxes, branches side by side, joins where inputs meet -------------------------
const SVG_NS = "http://www.w3.org/2000/svg";
const JOIN_SYMBOLS = {Add: "+", Multiply: "\u00d7", Concatenate: "\u2016", Subtract: "\u2212", Average: "\u03bc"};

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function drawGraph(svg, shown, width) {
  svg.textContent = "";
  const depth = new Map();
  for (const item of shown) {
    depth.set(item.index, item.sources.length ? 1 + Math.max(...item.sources.map(([s]) => depth.get(s) ?? 0)) : 0);
  }
  const levels = [];
  for (const item of shown) (levels[depth.get(item.index)] = levels[depth.get(item.index)] || []).push(item);
  const H = 40, GAP = 16, PAD = 6, place = new Map();
  let y = PAD;
  const boxes = el("g", {}, null), lines = el("g", {class: "graph-edges"}, svg);
  svg.appendChild(boxes);
  for (const level of levels.filter(Boolean)) {
    const w = (width - PAD * 2 - (level.length - 1) * 6) / level.length;
    level.forEach((item, i) => {
      const x = PAD + i * (w + 6), row = item.row;
      place.set(item.index, {x, y, w});
      const join = JOIN_SYMBOLS[row.type];
      const g = el("g", {class: "gnode" + (item.collapsed ? " collapsed" : "") + (item.block ? " in-block" : ""),
        "data-row": item.index, "data-name": row.name, ...(item.block ? {"data-block": item.block} : {})}, boxes);
      const title = el("title", {}, g);
      title.textContent = `${row.name}${row.type ? " (" + row.type + ")" : ""}${row.op ? ": " + row.op : ""}` +
        (item.block ? `\nclick to ${item.collapsed ? "expand" : "collapse"} ${item.block}` : "");
      if (join) {
        el("circle", {cx: x + w / 2, cy: y + H / 2, r: 11, class: "join"}, g);
        const t = el("text", {x: x + w / 2, y: y + H / 2 + 5, class: "join-symbol"}, g); t.textContent = join;
        const name = el("text", {x: x + w / 2 + 15, y: y + H / 2 + 4, class: "gdetail"}, g); name.textContent = row.name;
      } else {
        el("rect", {x, y, width: w, height: H, rx: 4, class: "gbox"}, g);
        const a = el("text", {x: x + 5, y: y + 14, class: "glabel"}, g);
        a.textContent = (item.block ? (item.collapsed ? "\u25b8 " : "\u25be ") : "") + item.label;
        const b = el("text", {x: x + 5, y: y + 27, class: "gdetail"}, g);
        b.textContent = item.index ? (item.collapsed ? item.op : [row.type, item.op].filter(Boolean).join(" \u00b7 ")) :
          `T=${row.length}`;
        const c = el("text", {x: x + 5, y: y + 37, class: "gdetail gnumbers"}, g);
        if (item.index) {
          for (const [cls, text] of [["rf", `RF ${row.receptive_field}`], ["jump", ` \u00b7 jump ${row.jump}`],
            ["len", ` \u00b7 T=${row.length}`], item.collapsed ?
              ["block-params", ` \u00b7 ${item.block_params.toLocaleString("en-US")} params`] :
              ["params", ` \u00b7 ${row.params.toLocaleString("en-US")} params`]]) {
            const span = el("tspan", {class: cls}, c); span.textContent = text;
          }
        }
      }
      if (item.sources.length > 1 && !join) {  // inputs summed or multiplied before this layer
        el("circle", {cx: x + w / 2, cy: y - 5, r: 3.5, class: "join-dot"}, g).appendChild(
          Object.assign(document.createElementNS(SVG_NS, "title"), {textContent: `${item.sources.length} inputs join here`}));
      }
    });
    y += H + GAP;
  }
  for (const item of shown) {
    const to = place.get(item.index);
    for (const [s] of item.sources) {
      const from = place.get(s);
      const x1 = from.x + from.w / 2, y1 = from.y + H, x2 = to.x + to.w / 2, y2 = to.y - (item.sources.length > 1 ? 8 : 0);
      const long = y2 - y1 > H + GAP + 1;
      const bend = long ? Math.min(from.w / 2 + 12, 60) : 0;
      el("path", {d: `M${x1},${y1} C${x1 + bend},${y1 + 24} ${x2 + bend},${y2 - 24} ${x2},${y2}`,
        class: long ? "gedge long" : "gedge"}, lines);
    }
  }
  svg.setAttribute("viewBox", `0 0 ${width} ${y}`);
  svg.setAttribute("height", String(y));
}

// ---- the page ------------------------------------------------------------------------------------------------
function createExplorer(root, initial) {
  const stack = initial.stack;
  const state = {name: initial.name, editable: stack !== null, readOnly: initial.read_only,
    inputChannels: stack ? stack.input_channels : null, inputLength: stack ? stack.input_length : null,
    layers: stack ? stack.layers.map((l) => ({...l})) : [], outputIndex: -1, proposals: [], collapsed: new Set(),
    view: null};
  const $ = (id) => root.querySelector("#" + id);
  const tree = createTree($("tree"));
  const blocks = new Set((initial.graph ? initial.graph.rows : []).map((r) => r.block).filter(Boolean));
  if (blocks.size >= 6) for (const b of blocks) state.collapsed.add(b);  // many repeated blocks: collapsed at first
  $("expand-all").hidden = $("collapse-all").hidden = !blocks.size;

  function parseValue(field, text) {
    if (field === "padding") return /^\d+$/.test(text) ? Number(text) : text;
    if (field === "kind" || field === "activation") return text;
    return /^-?\d+$/.test(String(text).trim()) ? Number(text) : NaN;
  }

  function layerRow(layer, i) {
    const tr = document.createElement("tr");
    const cell = (node) => { const td = document.createElement("td"); td.append(node); tr.append(td); return td; };
    const kind = document.createElement("select");
    for (const k of ["conv", "maxpool", "avgpool"]) kind.add(new Option(k, k, false, layer.kind === k));
    kind.dataset.layer = i; kind.dataset.field = "kind"; cell(kind);
    for (const field of ["kernel_size", "dilation", "stride", "padding", "channels"]) {
      const input = document.createElement("input");
      input.value = String(layer[field] ?? ""); input.dataset.layer = i; input.dataset.field = field;
      if (field === "padding") { input.style.width = "4.4em"; input.setAttribute("list", "paddings"); }
      if (field === "channels" && layer.kind !== "conv") input.disabled = true;
      cell(input);
    }
    const act = document.createElement("select");
    for (const a of ["", "relu", "tanh", "sigmoid", "gelu", "elu", "silu"]) act.add(new Option(a || "-", a, false, (layer.activation || "") === a));
    act.dataset.layer = i; act.dataset.field = "activation"; cell(act);
    const tools = document.createElement("span");
    for (const [label, action, title] of [["\u2191", "up", "move up"], ["\u2193", "down", "move down"], ["\u2715", "remove", "remove"]]) {
      const b = document.createElement("button");
      b.textContent = label; b.title = title; b.dataset.layer = i; b.dataset.action = action; tools.append(b);
    }
    cell(tools);
    return tr;
  }

  function renderEditor() {
    $("editor").hidden = !state.editable;
    $("read-only").hidden = state.editable;
    $("read-only").textContent = state.editable ? "" : `Read-only: ${state.readOnly}. Design a new stack on the right, or ` +
      "edit the model's own code or config.";
    const body = $("layers");
    body.textContent = "";
    state.layers.forEach((l, i) => body.append(layerRow(l, i)));
    if (state.editable) {
      $("input-length").value = String(state.inputLength);
      $("input-channels").value = String(state.inputChannels);
    }
  }

  const STATS = ["rf", "jump", "outlen", "params", "coverage", "causal"];

  function clearViews(message) {  // an invalid edit: nothing derived from the previous stack stays on the page
    for (const id of STATS) $(id).textContent = "-";
    for (const id of ["holes-note", "warning", "compare", "yaml", "model-yaml"]) {
      const node = $(id);
      if ("value" in node && node.tagName === "TEXTAREA") node.value = ""; else node.textContent = "";
    }
    $("graph").textContent = "";
    $("output-label").textContent = "output -";
    state.view = null;
    tree.clear(message);
  }

  function update(refit) {
    const error = $("error");
    let view;
    try {
      view = state.editable ? stackView(state) : modelView(initial);
      error.textContent = "";
    } catch (e) {
      error.textContent = e.message;
      clearViews(e.message);
      return;
    }
    state.view = view;
    const n = view.numbers;
    $("rf").textContent = (n.at_least ? ">=" : "") + String(n.receptive_field);
    $("jump").textContent = n.jump === null ? "-" : String(n.jump);
    $("outlen").textContent = n.output_length === null ? "-" : String(n.output_length);
    $("params").textContent = n.params.toLocaleString("en-US");
    $("coverage").textContent = n.fed === null ? "-" : `${n.fed} of ${n.receptive_field}`;
    $("causal").textContent = n.causal === true ? "yes" : n.causal === false ? "no" : n.causal === null ? "-" : String(n.causal);
    $("holes-note").textContent = n.fed === null ? "" : n.fed < n.receptive_field ?
      `${n.receptive_field - n.fed} steps under the field never feed an output (holes, marked in red)` : "no holes";
    $("warning").textContent = view.warning || "";
    if (state.editable) {
      $("yaml").value = stackYaml(state);
      const model = modelYaml(state);
      $("model-yaml").value = model || "# only for stride-1 causal convs with ReLU of one kernel size and one width";
      const strided = state.layers.some((l) => l.stride > 1);
      $("toggle").textContent = strided ? "strided \u2192 dilated" : "dilated \u2192 strided";
      $("compare").textContent = counterpart(state, strided ? "dilated" : "strided");
    } else {
      $("yaml").value = $("model-yaml").value = `# read-only: ${state.readOnly}`;
      $("compare").textContent = "";
    }
    $("notes").textContent = view.notes.filter((v, i, a) => v && a.indexOf(v) === i).join("; ");
    if (!view.rows.length) {  // the summary's numbers stand; there is no per-step tree to draw
      $("graph").textContent = "";
      tree.clear(`no tree: ${initial.graph_error}`);
      return;
    }
    const shown = shownRows(view.rows, state.collapsed, $("hide-pointwise").checked);
    const params = {};
    for (const r of view.rows) if (r.block) params[r.block] = (params[r.block] || 0) + r.params;
    for (const item of shown) if (item.collapsed) item.block_params = params[item.block];
    drawGraph($("graph"), shown, Math.max($("graph-panel").clientWidth - 26, 220));
    state.shown = shown;
    selectOutput(refit);
  }

  function selectOutput(refit = false) {  // the tree of the chosen output (the rest of the page stays)
    const view = state.view, top = view.rows[view.rows.length - 1];
    const index = Math.min(Math.max(state.outputIndex < 0 ? top.length + state.outputIndex : state.outputIndex, 0), top.length - 1);
    $("output-index").max = String(top.length - 1);
    $("output-index").value = String(index);
    $("output-label").textContent = `output t=${index}`;
    tree.set(view, state.shown, index);
    if (refit) tree.fitField(); else tree.draw();
  }

  root.addEventListener("input", (event) => {
    const t = event.target;
    if (t.id === "input-length" || t.id === "input-channels") {
      const v = parseValue("n", t.value);
      if (t.id === "input-length") state.inputLength = v; else state.inputChannels = v;
    } else if (t.id === "output-index") {
      state.outputIndex = Number(t.value);
      selectOutput(); return;
    } else if (t.id === "hide-pointwise") {
      update(false); return;
    } else if (t.id === "design-channels") {
      designNote(); return;
    } else if (t.dataset.layer !== undefined && t.dataset.field) {
      const layer = state.layers[Number(t.dataset.layer)];
      layer[t.dataset.field] = parseValue(t.dataset.field, t.value);
      if (t.dataset.field === "activation" && !t.value) delete layer.activation;
      if (t.dataset.field === "kind") {
        if (layer.kind !== "conv" && layer.padding === "causal") layer.padding = "valid";
        if (layer.kind !== "conv") { layer.dilation = 1; layer.channels = null; delete layer.activation; }
        else if (!layer.channels) layer.channels = 8;
        renderEditor();
      }
    } else return;
    update(t.id !== "output-index");  // an edit refits the tree to the new field; choosing an output keeps the zoom
  });

  root.addEventListener("click", (event) => {
    const block = event.target.closest("[data-block]");
    if (block) {
      const name = block.dataset.block;
      if (state.collapsed.has(name)) state.collapsed.delete(name); else state.collapsed.add(name);
      update(false);
      return;
    }
    const b = event.target.closest("button");
    if (!b) return;
    const i = Number(b.dataset.layer);
    const ls = state.layers;
    if (b.id === "zoom-in") { tree.zoom(2); return; }
    if (b.id === "zoom-out") { tree.zoom(0.5); return; }
    if (b.id === "fit-field") { tree.fitField(); return; }
    if (b.id === "fit-input") { tree.fitInput(); return; }
    if (b.id === "expand-all") { state.collapsed.clear(); update(false); return; }
    if (b.id === "collapse-all") { for (const name of blocks) state.collapsed.add(name); update(false); return; }
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
    renderEditor(); update(true);
  });

  // The numbers of the stack with every layer's stride and dilation swapped (the example's comparison); says
  // where striding leaves a layer fewer input steps than its stride (less than one output step's worth).
  function counterpart(current, label) {
    const swapped = current.layers.map((l) => ({...l, stride: l.dilation, dilation: l.stride}));
    try {
      const rows = geometry.stackGeometry(swapped, current.inputLength);
      const short = rows.findIndex((r) => r.input_length < r.layer.stride);
      if (short >= 0) {
        const r = rows[short];
        return `${label}: striding leaves fewer outputs than one from layer ${short} on (its input has ` +
          `${r.input_length} step${r.input_length === 1 ? "" : "s"}, its stride is ${r.layer.stride})`;
      }
      const last = rows[rows.length - 1];
      return `${label}: receptive field ${last.receptive_field}, jump ${last.jump}, output length ${last.output_length}`;
    } catch (e) { return `${label}: ${e.message}`; }
  }

  function designNote() {
    $("design-note").textContent = `params and FLOPs counted at ${$("design-channels").value.trim() || "?"} channels ` +
      `and ${state.inputChannels || 1} input channel${(state.inputChannels || 1) === 1 ? "" : "s"} (the fields above), ` +
      "not the model's own widths";
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
        block: value("design-block"), input_channels: state.inputChannels || 1});
    } catch (e) { note.textContent = e.message; return; }
    designNote();
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

  // A proposal as editable layers (conv + ReLU): residual blocks become their convs (the skips add no steps).
  function use(p) {
    state.layers = [];
    for (const d of p.dilations) {
      for (let j = 0; j < design.BLOCKS[p.block]; j++) {
        state.layers.push({kind: "conv", kernel_size: p.kernel_size, dilation: d, stride: 1, padding: "causal",
          channels: p.channels, activation: "relu"});
      }
    }
    if (!state.editable) {  // a read-only model: the proposal becomes a new stack the page edits
      state.editable = true; state.inputChannels = p.input_channels;
      state.inputLength = initial.summary.input_length; state.collapsed.clear();
    }
    state.inputLength = Math.max(state.inputLength, p.receptive_field);
  }

  function download() {
    const link = document.createElement("a");
    link.href = "data:text/yaml;charset=utf-8," + encodeURIComponent($("yaml").value);
    link.download = (state.name || "stack") + ".yaml";
    root.append(link); link.click(); link.remove();
  }

  $("design-target").value = String(initial.summary.receptive_field);
  const convs = state.layers.filter((l) => l.kind === "conv" && l.kernel_size > 1);
  if (convs.length) { $("design-kernel").value = String(convs[0].kernel_size); $("design-channels").value = String(convs[0].channels); }
  designNote();
  renderEditor(); update(true);
  window.addEventListener("resize", () => update(false));
  return {state, update, tree};
}

window.dilatedGeometry = geometry;
window.dilatedDesign = design;
window.dilatedExport = {stackYaml, modelYaml};
window.dilatedFields = fields;
window.dilatedViews = {stackView, modelView, shownRows, litSteps, readBounds};
window.dilatedCoverage = coverage;
window.addEventListener("DOMContentLoaded", () => {
  const initial = JSON.parse(document.getElementById("initial-state").textContent);
  window.dilatedExplorer = createExplorer(document.getElementById("explorer"), initial);
});
