// ../core/src/errors.ts
var ErrorCodes = {
  /** The configuration does not match the schema or is inconsistent; `details.issues` lists every problem. */
  CONFIG_INVALID: "MOE_ROUTE_ERR_CONFIG_INVALID",
  /** A config file could not be read or parsed as JSON. */
  CONFIG_PARSE: "MOE_ROUTE_ERR_CONFIG_PARSE",
  /** No plugin of that kind is registered under that name or npm package. */
  PLUGIN_UNKNOWN: "MOE_ROUTE_ERR_PLUGIN_UNKNOWN",
  /** The object is not a moe-route plugin (missing brand, meta or create). */
  PLUGIN_INVALID: "MOE_ROUTE_ERR_PLUGIN_INVALID",
  /** The plugin's supported core range does not include this core version. */
  PLUGIN_VERSION_MISMATCH: "MOE_ROUTE_ERR_PLUGIN_VERSION_MISMATCH",
  /** Options failed the plugin's JSON Schema. */
  PLUGIN_OPTIONS_INVALID: "MOE_ROUTE_ERR_PLUGIN_OPTIONS_INVALID",
  /** Another plugin with the same kind and name is already registered. */
  PLUGIN_DUPLICATE: "MOE_ROUTE_ERR_PLUGIN_DUPLICATE",
  /** A plugin threw while creating or running a hook; `details.plugin` and `details.hook` say which. */
  PLUGIN_FAILED: "MOE_ROUTE_ERR_PLUGIN_FAILED",
  /** A package could not be imported as a plugin. */
  PLUGIN_LOAD_FAILED: "MOE_ROUTE_ERR_PLUGIN_LOAD_FAILED",
  /** An array has the wrong length for the declared shape. */
  SHAPE_MISMATCH: "MOE_ROUTE_ERR_SHAPE_MISMATCH",
  /** Logits or scores contain NaN or infinity. */
  INPUT_NOT_FINITE: "MOE_ROUTE_ERR_INPUT_NOT_FINITE",
  /** top-k is larger than the number of experts. */
  TOPK_EXCEEDS_EXPERTS: "MOE_ROUTE_ERR_TOPK_EXCEEDS_EXPERTS",
  /** Any other malformed input (bad ids, negative sizes, missing fields). */
  INPUT_INVALID: "MOE_ROUTE_ERR_INPUT_INVALID",
  /** A push-based source outran the bounded queue of the stream. */
  STREAM_OVERFLOW: "MOE_ROUTE_ERR_STREAM_OVERFLOW",
  /** The stream was used after it was closed. */
  STREAM_CLOSED: "MOE_ROUTE_ERR_STREAM_CLOSED",
  /** The requested backend cannot run here (no adapter, missing weights). */
  BACKEND_UNAVAILABLE: "MOE_ROUTE_ERR_BACKEND_UNAVAILABLE",
  /** The GPU device was lost or ran out of memory. */
  BACKEND_DEVICE_LOST: "MOE_ROUTE_ERR_BACKEND_DEVICE_LOST",
  /** A file does not exist or cannot be read. */
  FILE_NOT_FOUND: "MOE_ROUTE_ERR_FILE_NOT_FOUND",
  /** A trace or tensor file is corrupt (truncated, bad header, wrong dtype, ids out of range, NaN). */
  TRACE_CORRUPT: "MOE_ROUTE_ERR_TRACE_CORRUPT",
  /** A required service is not registered in the container. */
  SERVICE_MISSING: "MOE_ROUTE_ERR_SERVICE_MISSING"
};
var MoeError = class extends Error {
  code;
  details;
  constructor(code, message, details = {}, options) {
    super(message, options);
    this.name = "MoeError";
    this.code = code;
    this.details = details;
  }
  /** `CODE: message` — what the CLI prints. */
  toString() {
    return `${this.code}: ${this.message}`;
  }
  toJSON() {
    return { code: this.code, message: this.message, details: this.details };
  }
};
var BRAND = /* @__PURE__ */ Symbol.for("@moe-route/core:error");
Object.defineProperty(MoeError.prototype, BRAND, { value: true });

// ../core/src/util/rng.ts
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = a + 1831565813 >>> 0;
    let t = a;
    t = Math.imul(t ^ t >>> 15, t | 1);
    t ^= t + Math.imul(t ^ t >>> 7, t | 61);
    return ((t ^ t >>> 14) >>> 0) / 4294967296;
  };
}
function mixSeed(...parts) {
  let h = 2654435769;
  for (const p of parts) {
    h = Math.imul(h ^ p >>> 0, 2246822507);
    h ^= h >>> 13;
    h = Math.imul(h, 3266489909);
    h ^= h >>> 16;
  }
  return h >>> 0;
}
function normal(random) {
  let spare = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = random();
    const v = random();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

// src/io/errors.ts
function invalid(message, details = {}) {
  return new MoeError(ErrorCodes.INPUT_INVALID, message, details);
}

// src/generators/gate-scores.ts
var DEFAULT_LOGIT_STD = 1;
function synthesizeScores(tokens, experts, topK, expertIds, random, weights, options = {}) {
  const sigma = options.logitStd ?? DEFAULT_LOGIT_STD;
  const gap = options.minGap ?? 0.01;
  const gauss = normal(random);
  const scores = new Float32Array(tokens * experts);
  const z = new Float64Array(experts);
  const logit = new Float64Array(experts);
  const chosen = new Uint8Array(experts);
  const others = new Int32Array(experts);
  for (let t = 0; t < tokens; t++) {
    for (let e = 0; e < experts; e++) z[e] = sigma * gauss();
    z.sort().reverse();
    for (let i = 0; i < Math.min(topK, experts - 1); i++) if (z[i + 1] > z[i] - gap) z[i + 1] = z[i] - gap;
    for (let i = topK + 1; i < experts; i++) if (z[i] > z[topK]) z[i] = z[topK];
    chosen.fill(0);
    const base = t * topK;
    if (weights && !Number.isNaN(weights[base])) {
      let minLog = Infinity;
      let maxW = 0;
      for (let j = 0; j < topK; j++) maxW = Math.max(maxW, weights[base + j]);
      const floor = maxW > 0 ? maxW * 1e-6 : 1;
      for (let j = 0; j < topK; j++) minLog = Math.min(minLog, Math.log(Math.max(weights[base + j], floor)));
      for (let j = 0; j < topK; j++) {
        const e = expertIds[base + j];
        logit[e] = Math.log(Math.max(weights[base + j], floor)) - minLog + z[topK - 1];
        chosen[e] = 1;
      }
    } else {
      for (let j = 0; j < topK; j++) {
        logit[expertIds[base + j]] = z[j];
        chosen[expertIds[base + j]] = 1;
      }
    }
    let n = 0;
    for (let e = 0; e < experts; e++) if (!chosen[e]) others[n++] = e;
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      const tmp = others[i];
      others[i] = others[j];
      others[j] = tmp;
    }
    for (let i = 0; i < n; i++) logit[others[i]] = z[topK + i];
    let max = -Infinity;
    for (let e = 0; e < experts; e++) if (logit[e] > max) max = logit[e];
    let sum = 0;
    for (let e = 0; e < experts; e++) sum += Math.exp(logit[e] - max);
    const o = t * experts;
    for (let e = 0; e < experts; e++) scores[o + e] = Math.exp(logit[e] - max) / sum;
  }
  return scores;
}
function weightsFromScores(scores, experts, topK, expertIds, normalizeTopK) {
  const tokens = expertIds.length / topK;
  const out = new Float32Array(expertIds.length);
  for (let t = 0; t < tokens; t++) {
    let sum = 0;
    for (let j = 0; j < topK; j++) sum += scores[t * experts + expertIds[t * topK + j]];
    for (let j = 0; j < topK; j++) {
      const s = scores[t * experts + expertIds[t * topK + j]];
      out[t * topK + j] = normalizeTopK ? s / sum : s;
    }
  }
  return out;
}

// src/stats/load-stats.ts
var DEFAULT_STAT_BATCH_SIZES = [512, 2048, 8192];
var LoadAccumulator = class {
  experts;
  batchSizes;
  load;
  windows;
  tokens = 0;
  pairs = 0;
  constructor(experts, batchSizes = DEFAULT_STAT_BATCH_SIZES) {
    this.experts = experts;
    this.batchSizes = batchSizes;
    this.load = new Float64Array(experts);
    this.windows = batchSizes.map((size) => ({ size, fill: 0, load: new Float64Array(experts), ratios: [] }));
  }
  /** Adds one token routed to `experts[offset .. offset+count)` (entries < 0 are empty slots). */
  addToken(experts, offset = 0, count = experts.length) {
    for (let j = 0; j < count; j++) {
      const e = experts[offset + j];
      if (e < 0) continue;
      this.load[e]++;
      this.pairs++;
      for (const w of this.windows) w.load[e]++;
    }
    this.tokens++;
    for (const w of this.windows) {
      if (++w.fill === w.size) {
        w.ratios.push(maxMean(w.load));
        w.load.fill(0);
        w.fill = 0;
      }
    }
  }
  /** Adds `expertIds.length / k` tokens of k slots each. */
  addTokens(expertIds, k) {
    for (let o = 0; o + k <= expertIds.length; o += k) this.addToken(expertIds, o, k);
  }
  /** The statistics so far. */
  result() {
    let sum = 0;
    let min = Infinity;
    for (const l of this.load) {
      sum += l;
      min = Math.min(min, l);
    }
    const mean = sum / this.experts;
    return {
      tokens: this.tokens,
      pairs: this.pairs,
      experts: this.experts,
      load: Array.from(this.load),
      maxMean: maxMean(this.load),
      minMean: mean > 0 ? min / mean : 0,
      perBatch: this.windows.map((w) => {
        const sorted = [...w.ratios].sort((a, b) => a - b);
        const n = sorted.length;
        return {
          batchSize: w.size,
          batches: n,
          meanMaxMean: n ? sorted.reduce((a, b) => a + b, 0) / n : 0,
          p95MaxMean: n ? sorted[Math.min(n - 1, Math.ceil(0.95 * n) - 1)] : 0,
          maxMaxMean: n ? sorted[n - 1] : 0
        };
      })
    };
  }
};
function maxMean(load2) {
  let sum = 0;
  let max = 0;
  for (let i = 0; i < load2.length; i++) {
    sum += load2[i];
    if (load2[i] > max) max = load2[i];
  }
  return sum === 0 ? 0 : max / (sum / load2.length);
}
function loadDistance(a, b) {
  const sa = a.reduce((x, y) => x + y, 0);
  const sb = b.reduce((x, y) => x + y, 0);
  let d = 0;
  for (let i = 0; i < a.length; i++) d += Math.abs(a[i] / sa - b[i] / sb);
  return d / 2;
}

// src/generators/sampling.ts
function inclusionProbabilities(weights, k) {
  const n = weights.length;
  const w = Float64Array.from(weights);
  let positive = 0;
  for (let i = 0; i < n; i++) if (w[i] > 0) positive++;
  if (positive < k) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += w[i];
    const floor = (sum > 0 ? sum : 1) * 1e-9;
    for (let i = 0; i < n; i++) w[i] += floor;
  }
  const pi = new Float64Array(n);
  const capped = new Uint8Array(n);
  let budget = k;
  for (; ; ) {
    let sum = 0;
    for (let i = 0; i < n; i++) if (!capped[i]) sum += w[i];
    let changed = false;
    for (let i = 0; i < n; i++) {
      if (capped[i]) continue;
      pi[i] = budget * w[i] / sum;
      if (pi[i] > 1) {
        capped[i] = 1;
        pi[i] = 1;
        budget -= 1;
        changed = true;
      }
    }
    if (!changed) break;
  }
  return pi;
}
function drawSystematic(pi, k, random, order, out, offset) {
  const n = pi.length;
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  let point = random();
  let cum = 0;
  let got = 0;
  let last = -1;
  for (let i = 0; i < n && got < k; i++) {
    const e = order[i];
    const next = cum + pi[e];
    if (pi[e] > 0 && point < next) {
      out[offset + got++] = e;
      point += 1;
    }
    cum = next;
    if (pi[e] > 0) last = i;
  }
  for (let i = last; got < k && i >= 0; i--) {
    const e = order[i];
    let taken = false;
    for (let j = 0; j < got; j++) if (out[offset + j] === e) taken = true;
    if (!taken) out[offset + got++] = e;
  }
}
function pickFirst(bias, k, random, out, offset) {
  let sum = 0;
  for (let j = 0; j < k; j++) sum += bias[out[offset + j]];
  if (!(sum > 0)) return;
  let r = random() * sum;
  let pick = k - 1;
  for (let j = 0; j < k; j++) {
    r -= bias[out[offset + j]];
    if (r < 0) {
      pick = j;
      break;
    }
  }
  const t = out[offset];
  out[offset] = out[offset + pick];
  out[offset + pick] = t;
}

// src/generators/workload.ts
function checkRun(o) {
  if (!Number.isInteger(o.tokensPerBatch) || o.tokensPerBatch < 1) throw invalid(`tokensPerBatch must be a positive integer, got ${o.tokensPerBatch}`, { path: "tokensPerBatch" });
  if (o.batches !== void 0 && (!Number.isInteger(o.batches) || o.batches < 0)) throw invalid(`batches must be a non-negative integer, got ${o.batches}`, { path: "batches" });
  if (o.tokens !== void 0 && (!Number.isInteger(o.tokens) || o.tokens < 0)) throw invalid(`tokens must be a non-negative integer, got ${o.tokens}`, { path: "tokens" });
  if (o.seed !== void 0 && !Number.isInteger(o.seed)) throw invalid(`seed must be an integer, got ${o.seed}`, { path: "seed" });
}
function createWorkload(def) {
  const { experts, topK, normalizeTopK } = def;
  function* choices(o) {
    checkRun(o);
    const seed = o.seed ?? 0;
    const sampler = def.sampler(seed);
    const random = mulberry32(mixSeed(seed, 6514736));
    let produced = 0;
    for (let b = 0; ; b++) {
      if (o.batches !== void 0 && b >= o.batches) return;
      const left = o.tokens === void 0 ? o.tokensPerBatch : Math.min(o.tokensPerBatch, o.tokens - produced);
      if (left <= 0) return;
      const expertIds = new Int32Array(left * topK);
      for (let t = 0; t < left; t++) sampler.next(random, expertIds, t * topK);
      yield { id: (o.firstBatchId ?? 0) + b, tokens: left, firstToken: produced, expertIds };
      produced += left;
    }
  }
  function* scored(o) {
    const random = mulberry32(mixSeed(o.seed ?? 0, 7562032));
    for (const c of choices(o)) yield { c, scores: synthesizeScores(c.tokens, experts, topK, c.expertIds, random, null, o.gate) };
  }
  function* batchesSync(o) {
    for (const { c, scores } of scored(o)) yield { id: c.id, tokens: c.tokens, scores };
  }
  return {
    spec: def.spec,
    description: def.description,
    experts,
    topK,
    normalizeTopK,
    targetLoad: def.targetLoad,
    choices,
    batchesSync,
    async *batches(o) {
      yield* batchesSync(o);
    },
    *records(o) {
      const layer = o.layer ?? 0;
      for (const { c, scores } of scored(o)) {
        const w = weightsFromScores(scores, experts, topK, c.expertIds, normalizeTopK);
        for (let t = 0; t < c.tokens; t++) {
          yield {
            layer,
            token: c.firstToken + t,
            experts: Array.from(c.expertIds.subarray(t * topK, (t + 1) * topK)),
            weights: Array.from(w.subarray(t * topK, (t + 1) * topK))
          };
        }
      }
    }
  };
}

// src/data/data.ts
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
var dataDirCache;
var cache = /* @__PURE__ */ new Map();
function dataDir() {
  if (dataDirCache) return dataDirCache;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, "data", "expert-counts.json"))) return dataDirCache = join(dir, "data");
    dir = dirname(dir);
  }
  throw new MoeError(ErrorCodes.FILE_NOT_FOUND, `@moe-route/workloads: shipped data folder not found above ${fileURLToPath(import.meta.url)}`);
}
function load(name, parse) {
  const hit = cache.get(name);
  if (hit !== void 0) return hit;
  const path = join(dataDir(), name);
  let bytes;
  try {
    bytes = readFileSync(path);
  } catch (cause) {
    throw new MoeError(ErrorCodes.FILE_NOT_FOUND, `cannot read shipped data ${path}: ${cause.message}`, { file: path }, { cause });
  }
  const value = parse(bytes);
  cache.set(name, value);
  return value;
}
function expertCounts() {
  return load("expert-counts.json", (b) => JSON.parse(b.toString("utf8")).models);
}
function llamaMoeCoactivation() {
  return load("llama-moe-coactivation.json", (b) => JSON.parse(b.toString("utf8")));
}
function mixtralTokens(domain) {
  return load(`mixtral-${domain}.tokens.gz`, (b) => {
    const raw = gunzipSync(b);
    return new Uint16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  });
}
function mixtralTokenExperts(domain) {
  return load(`mixtral-${domain}.experts.gz`, (b) => {
    const raw = gunzipSync(b);
    const tables = [];
    let pos = 0;
    const varint = () => {
      let v = 0;
      let mul = 1;
      for (; ; ) {
        const byte = raw[pos++];
        v += (byte & 127) * mul;
        if (byte < 128) return v;
        mul *= 128;
      }
    };
    while (pos < raw.length) {
      const n = raw.readUInt32LE(pos);
      pos += 4;
      const ids = new Uint16Array(n);
      let id = 0;
      for (let i = 0; i < n; i++) ids[i] = id = i === 0 ? varint() : id + varint();
      const counts = new Uint32Array(n * 8);
      for (let i = 0; i < n * 8; i++) counts[i] = varint();
      tables.push({ ids, counts });
    }
    return tables;
  });
}

// src/generators/generators.ts
var normalize = (v) => {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i];
  return Array.from(v, (x) => x / s);
};
function marginalSampler(pi, k, first) {
  const order = new Int32Array(pi.length);
  return {
    next(random, out, offset) {
      drawSystematic(pi, k, random, order, out, offset);
      if (first) pickFirst(first, k, random, out, offset);
    }
  };
}
function firstBias(topk, top1) {
  if (!top1) return null;
  return Float64Array.from(topk, (c, e) => c > 0 ? top1[e] / c : 0);
}
function uniformWorkload(experts, topK, normalizeTopK = true) {
  if (!Number.isInteger(experts) || experts < 1) throw invalid(`uniform workload: E must be a positive integer, got ${experts}`);
  if (!Number.isInteger(topK) || topK < 1 || topK > experts) throw invalid(`uniform workload: k must be an integer in 1..${experts}, got ${topK}`);
  const pi = new Float64Array(experts).fill(topK / experts);
  return createWorkload({
    spec: `uniform:E=${experts}:k=${topK}`,
    description: `uniform routing, ${experts} experts, top-${topK}`,
    experts,
    topK,
    normalizeTopK,
    targetLoad: new Array(experts).fill(1 / experts),
    sampler: () => marginalSampler(pi, topK, null)
  });
}
var POPULARITY_MODELS = {
  olmoe: { key: "olmoe", normalizeTopK: false, label: "OLMoE-1B-7B-0924" },
  "olmoe-sft": { key: "olmoe-sft", normalizeTopK: false, label: "OLMoE-1B-7B-0924-SFT" },
  "olmoe-dpo": { key: "olmoe-dpo", normalizeTopK: false, label: "OLMoE-1B-7B-0924-DPO" },
  "mixtral-marginal": { key: "mistral", normalizeTopK: true, label: "Mixtral-8x7B-v0.1" }
};
function recordedLayer(model, domain, layer) {
  const m = expertCounts()[POPULARITY_MODELS[model].key];
  const d = m.domains[domain];
  if (!d) throw invalid(`${model}: no recorded domain "${domain}" (recorded: ${Object.keys(m.domains).join(", ")})`);
  const li = m.layers.indexOf(layer);
  if (li < 0) throw invalid(`${model}: layer ${layer} was not recorded (recorded layers: ${m.layers.join(", ")})`);
  return { m, topk: d.topk[li], top1: d.top1?.[li] };
}
function popularityWorkload(model, domain, layer) {
  const spec = POPULARITY_MODELS[model];
  if (!spec) throw invalid(`unknown popularity model "${model}" (known: ${Object.keys(POPULARITY_MODELS).join(", ")})`);
  const { m, topk, top1 } = recordedLayer(model, domain, layer);
  const pi = inclusionProbabilities(topk, m.topK);
  const first = firstBias(topk, top1);
  return createWorkload({
    spec: `${model}:${domain}:layer${layer}`,
    description: `${spec.label} layer ${layer} on ${domain}: i.i.d. draws from the recorded per-expert counts (${m.experts} experts, top-${m.topK})`,
    experts: m.experts,
    topK: m.topK,
    normalizeTopK: spec.normalizeTopK,
    targetLoad: normalize(topk),
    sampler: () => marginalSampler(pi, m.topK, first)
  });
}
var MIXTRAL_LAYERS = [0, 7, 15];
var NEWLINE = 13;
function mixtralReplayWorkload(domain, layer, options = {}) {
  const li = MIXTRAL_LAYERS.indexOf(layer);
  if (li < 0) throw invalid(`mixtral: layer ${layer} was not recorded (recorded layers: ${MIXTRAL_LAYERS.join(", ")})`);
  const { m, topk, top1 } = recordedLayer("mixtral-marginal", domain, layer);
  const table = mixtralTokenExperts(domain)[li];
  const ids = options.tokenIds ? Uint16Array.from(options.tokenIds) : mixtralTokens(domain);
  if (ids.length === 0) throw invalid("mixtral replay: no tokens to replay");
  const k = m.topK;
  const row = new Int32Array(65536).fill(-1);
  const pis = [];
  for (let i = 0; i < table.ids.length; i++) {
    row[table.ids[i]] = i;
    pis.push(inclusionProbabilities(table.counts.subarray(i * 8, i * 8 + 8), k));
  }
  const fallback = inclusionProbabilities(topk, k);
  const first = firstBias(topk, top1);
  const lineStarts = [0];
  for (let i = 0; i + 1 < ids.length; i++) if (ids[i] === NEWLINE) lineStarts.push(i + 1);
  return createWorkload({
    spec: `mixtral:${domain}:layer${layer}`,
    description: `Mixtral-8x7B-v0.1 layer ${layer}, replay of the recorded ${domain} text (${ids.length} tokens) with per-token-id expert counts`,
    experts: m.experts,
    topK: k,
    normalizeTopK: true,
    targetLoad: normalize(topk),
    sampler(seed) {
      let pos = options.start ?? lineStarts[Math.floor(mulberry32(mixSeed(seed, 7566384))() * lineStarts.length)];
      pos = (pos % ids.length + ids.length) % ids.length;
      const order = new Int32Array(m.experts);
      return {
        next(random, out, offset) {
          const r = row[ids[pos]];
          pos = pos + 1 === ids.length ? 0 : pos + 1;
          drawSystematic(r >= 0 ? pis[r] : fallback, k, random, order, out, offset);
          if (first) pickFirst(first, k, random, out, offset);
        }
      };
    }
  });
}
function llamaMoePairsWorkload(variant, layer) {
  const data = llamaMoeCoactivation();
  const mats = data.matrices[variant];
  if (!mats) throw invalid(`llama-moe: unknown variant "${variant}" (known: ${Object.keys(data.matrices).join(", ")})`);
  if (!Number.isInteger(layer) || layer < 0 || layer >= mats.length) throw invalid(`llama-moe: layer ${layer} is outside 0..${mats.length - 1}`);
  const E = data.experts;
  const M = mats[layer];
  const cum = new Float64Array(E * E);
  let total = 0;
  const load2 = new Array(E).fill(0);
  for (let i = 0; i < E; i++) {
    for (let j = 0; j < E; j++) {
      const c = i === j ? 0 : M[i][j];
      total += c;
      cum[i * E + j] = total;
      load2[i] += c;
      load2[j] += c;
    }
  }
  return createWorkload({
    spec: `llama-moe:${variant}:layer${layer}`,
    description: `LLaMA-MoE-v1-3.5B (${variant}) layer ${layer}: expert pairs drawn from the recorded co-activation counts`,
    experts: E,
    topK: 2,
    normalizeTopK: true,
    targetLoad: normalize(load2),
    sampler: () => ({
      next(random, out, offset) {
        const r = random() * total;
        let lo = 0;
        let hi = cum.length - 1;
        while (lo < hi) {
          const mid = lo + hi >> 1;
          if (cum[mid] > r) hi = mid;
          else lo = mid + 1;
        }
        out[offset] = Math.floor(lo / E);
        out[offset + 1] = lo % E;
      }
    })
  });
}

// src/generators/spec.ts
var MODEL_KEYS = { mixtral: "mistral", "mixtral-marginal": "mistral", olmoe: "olmoe", "olmoe-sft": "olmoe-sft", "olmoe-dpo": "olmoe-dpo" };
function workloadSpecPatterns() {
  const counts = expertCounts();
  const out = [];
  for (const [name, key] of Object.entries(MODEL_KEYS)) {
    const m = counts[key];
    out.push(`${name}:{${Object.keys(m.domains).join(",")}}:layer{${m.layers.join(",")}}`);
  }
  const co = llamaMoeCoactivation();
  const variants = Object.keys(co.matrices);
  out.push(`llama-moe:{${variants.join(",")}}:layer{0..${co.matrices[variants[0]].length - 1}}`);
  out.push("uniform:E=<experts>:k=<topK>");
  return out;
}
function unknown(spec, why) {
  const patterns = workloadSpecPatterns();
  return new MoeError(ErrorCodes.INPUT_INVALID, `unknown workload spec '${spec}': ${why}. Valid specs: ${patterns.join(" | ")}`, {
    spec,
    valid: patterns
  });
}
function workloadFromSpec(spec) {
  const parts = spec.trim().split(":");
  const [model] = parts;
  if (model === "uniform") {
    const kv = new Map(parts.slice(1).map((p) => p.split("=")));
    const E = Number(kv.get("E"));
    const k = Number(kv.get("k"));
    if (parts.length !== 3 || !Number.isInteger(E) || !Number.isInteger(k) || E < 1 || k < 1 || k > E) {
      throw unknown(spec, "uniform needs E=<experts>:k=<topK> with 1 \u2264 k \u2264 E");
    }
    return uniformWorkload(E, k);
  }
  if (parts.length !== 3) throw unknown(spec, "expected <model>:<domain>:layer<N>");
  const [, domain, layerText] = parts;
  const lm = /^layer(\d+)$/.exec(layerText);
  if (!lm) throw unknown(spec, `'${layerText}' is not layer<N>`);
  const layer = Number(lm[1]);
  try {
    if (model === "mixtral") return mixtralReplayWorkload(domain, layer);
    if (model === "llama-moe") return llamaMoePairsWorkload(domain, layer);
    if (model in MODEL_KEYS) return popularityWorkload(model, domain, layer);
  } catch (e) {
    throw unknown(spec, e.message);
  }
  throw unknown(spec, `unknown model '${model}'`);
}

// scripts/measure.ts
var TOKENS = Number(process.env.TOKENS ?? 1 << 20);
var SEED = Number(process.env.SEED ?? 1);
var specs = (process.argv[2] ?? "").split(",").filter(Boolean);
function recordedLoad(spec) {
  const [model, domain, layerText] = spec.split(":");
  if (model === "uniform") return workloadFromSpec(spec).targetLoad.map((x) => x);
  const layer = Number(layerText.slice(5));
  if (model === "llama-moe") {
    const M = llamaMoeCoactivation().matrices[domain][layer];
    return M.map((row, i) => row.reduce((a, b, j) => a + b + M[j][i], 0) / 2);
  }
  const key = model === "mixtral" || model === "mixtral-marginal" ? "mistral" : model;
  const m = expertCounts()[key];
  return m.domains[domain].topk[m.layers.indexOf(layer)];
}
var rows = [];
rows.push("| workload | recorded max/mean | generated max/mean | TV(load) | per batch 512: mean / p95 | 2048: mean / p95 | 8192: mean / p95 | ms per 1M tokens |");
rows.push("|---|---|---|---|---|---|---|---|");
for (const spec of specs) {
  const w = workloadFromSpec(spec);
  const acc = new LoadAccumulator(w.experts);
  const t0 = performance.now();
  for (const c of w.choices({ tokensPerBatch: 8192, tokens: TOKENS, seed: SEED })) acc.addTokens(c.expertIds, w.topK);
  const ms = (performance.now() - t0) * (1 << 20) / TOKENS;
  const s = acc.result();
  const rec = recordedLoad(spec);
  const f = (x) => x.toFixed(2);
  rows.push(
    `| \`${spec}\` | ${f(maxMean(rec))} | ${f(s.maxMean)} | ${loadDistance(rec, s.load).toFixed(4)} | ${s.perBatch.map((b) => `${f(b.meanMaxMean)} / ${f(b.p95MaxMean)}`).join(" | ")} | ${ms.toFixed(0)} |`
  );
}
console.log(rows.join("\n"));
if (process.env.SCORES) {
  const out = ["", "| workload | TokenBatch tokens/s (batches of 2048, with scores) |", "|---|---|"];
  for (const spec of specs) {
    const w = workloadFromSpec(spec);
    const t0 = performance.now();
    let n = 0;
    for (const b of w.batchesSync({ tokensPerBatch: 2048, tokens: 1 << 18, seed: SEED })) n += b.tokens;
    out.push(`| \`${spec}\` | ${Math.round(n / ((performance.now() - t0) / 1e3)).toLocaleString("en-US")} |`);
  }
  console.log(out.join("\n"));
}
