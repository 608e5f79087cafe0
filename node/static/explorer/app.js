// pocnet explorer: a small static app over the peer's REST API and GET /events (SSE).
// No build step, no framework; charts with the vendored uPlot. Routes live in the URL hash.
"use strict";

const SCALE = 1e6;  // FML quantities are stored x 1e6
const view = document.getElementById("view");
const headEl = document.getElementById("head-height");
const liveEl = document.getElementById("live");
let head = 0;
let status = null;
let onBlock = null;   // the current page's live handler
let charts = [];

// ---------------------------------------------------------------- helpers
function esc(v) {
  return String(v).replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}
function short(h, n = 10) { return h ? esc(h.slice(0, n)) + "…" : ""; }
function addr(a, n = 12) { return a ? `<a class="mono" href="#/account/${esc(a)}" title="${esc(a)}">${short(a, n)}</a>` : ""; }
function txLink(h) { return `<a class="mono" href="#/tx/${esc(h)}" title="${esc(h)}">${short(h, 14)}</a>`; }
function blockLink(h) { return `<a class="block-link" href="#/block/${h}">${h}</a>`; }
function fmtTime(ms) { return new Date(ms).toISOString().replace("T", " ").replace(".000Z", "Z"); }
function scaled(x, digits = 3) { return x === undefined || x === null ? "" : (x / SCALE).toFixed(digits); }
function kv(rows) {
  return `<table class="kv">${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v}</td></tr>`).join("")}</table>`;
}
function table(cols, rows, id = "") {
  const head = cols.map(c => `<th class="${c.num ? "num" : ""}">${esc(c.t)}</th>`).join("");
  const body = rows.map(r => `<tr>${r.map((v, i) => `<td class="${cols[i].num ? "num" : ""}">${v}</td>`).join("")}</tr>`).join("");
  return `<table${id ? ` id="${id}"` : ""}><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}
function card(label, value, id = "") {
  return `<div class="card"><div class="label">${esc(label)}</div><div class="value"${id ? ` id="${id}"` : ""}>${value}</div></div>`;
}
async function api(path) {
  const r = await fetch(path, {headers: {"Accept": "application/json"}});
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (!r.ok) {
    const why = body && body.reason ? `${body.error}: ${body.reason}` : `HTTP ${r.status}`;
    throw new Error(why);
  }
  return body;
}
function setHead(h) {
  if (h > head) { head = h; }
  headEl.textContent = String(head);
}
function destroyCharts() { charts.forEach(c => c.destroy()); charts = []; }
function lineChart(el, title, xLabel, xs, series) {
  // series: [{label, values}] aligned with xs
  if (!window.uPlot || xs.length === 0) { return; }
  const palette = ["#4f6bd8", "#e07b39", "#2f9e6b", "#c8408f", "#8a6d1f", "#3aa0c8", "#7d4fd8", "#d84f4f"];
  const opts = {
    title, width: Math.min(1000, Math.max(420, view.clientWidth - 60)), height: 280,
    scales: {x: {time: false}},
    axes: [{label: xLabel}, {}],
    series: [{label: xLabel}, ...series.map((s, i) => ({label: s.label, stroke: palette[i % palette.length],
                                                         width: 2, points: {show: true}}))],
  };
  charts.push(new uPlot(opts, [xs, ...series.map(s => s.values)], el));
}

// ---------------------------------------------------------------- live updates (SSE)
let source = null;
function connectEvents() {
  if (!window.EventSource) { return; }
  source = new EventSource("/events?events=new_block");
  source.addEventListener("open", () => liveEl.classList.add("on"));
  source.addEventListener("error", () => liveEl.classList.remove("on"));  // EventSource retries by itself
  source.addEventListener("new_block", ev => {
    const b = JSON.parse(ev.data);
    setHead(b.height);
    if (onBlock) { onBlock(b); }
  });
}

// ---------------------------------------------------------------- pages
function blockRow(b) {
  const h = b.header;
  return `<tr data-height="${h.height}"><td>${blockLink(h.height)}</td><td>${fmtTime(h.timestamp_ms)}</td>
    <td class="num">${b.num_txs !== undefined ? b.num_txs : b.txs.length}</td><td>${addr(h.proposer)}</td>
    <td class="num">${h.round}</td><td class="mono">${short(b.hash, 16)}</td></tr>`;
}

async function pageHome() {
  const st = await api("/status");
  status = st;
  setHead(st.height);
  const from = Math.max(1, st.height - 24);
  const page = st.height >= 1 ? await api(`/blocks?from=${from}&limit=25`) : {blocks: []};
  const blocks = page.blocks.slice().reverse();
  const cons = st.consensus || {};
  view.innerHTML = `<h1>Chain <span class="mono">${esc(st.chain_id)}</span></h1>
    <div class="cards">${card("height", st.height, "home-height")}${card("validators", st.validators.length)}
    ${card("round", cons.round !== undefined ? cons.round : "–", "home-round")}${card("mempool", st.mempool_size, "home-mempool")}
    ${card("this peer", esc(st.name))}</div>
    <h2>Latest blocks <span class="tag">live</span></h2>
    <table id="blocks"><thead><tr><th>height</th><th>time (UTC)</th><th class="num">txs</th><th>proposer</th>
    <th class="num">round</th><th>hash</th></tr></thead><tbody>${blocks.map(blockRow).join("")}</tbody></table>`;
  const tbody = view.querySelector("#blocks tbody");
  onBlock = b => {
    if (tbody.querySelector(`tr[data-height="${b.height}"]`)) { return; }
    tbody.insertAdjacentHTML("afterbegin", blockRow({header: b.header, hash: b.hash, num_txs: b.num_txs}));
    tbody.firstElementChild.classList.add("new");
    while (tbody.children.length > 25) { tbody.lastElementChild.remove(); }
    const hh = document.getElementById("home-height");
    if (hh) { hh.textContent = String(b.height); }
  };
}

async function pageBlock(height) {
  const b = await api(`/blocks/${encodeURIComponent(height)}`);
  const h = b.header;
  const hashes = b.tx_hashes || null;
  const rows = [["height", String(h.height)], ["hash", `<span class="mono">${esc(b.hash)}</span>`],
    ["time", fmtTime(h.timestamp_ms)], ["proposer", addr(h.proposer, 64)], ["round", String(h.round)],
    ["prev_hash", h.height > 1 ? `<a class="mono" href="#/block/${h.height - 1}">${esc(h.prev_hash)}</a>` : `<span class="mono">${esc(h.prev_hash)}</span>`],
    ["state_root", `<span class="mono">${esc(h.state_root)}</span>`], ["tx_root", `<span class="mono">${esc(h.tx_root)}</span>`],
    ["poc_digest", `<span class="mono">${esc(h.poc_digest)}</span>`]];
  for (const k of Object.keys(h).sort()) {  // fields added by newer releases (e.g. version, beacon)
    if (!["height", "timestamp_ms", "proposer", "round", "prev_hash", "state_root", "tx_root", "poc_digest", "chain_id"].includes(k)) {
      rows.push([k, `<span class="mono">${esc(typeof h[k] === "object" ? JSON.stringify(h[k]) : h[k])}</span>`]);
    }
  }
  // tx hashes come from the index of this height (GET /txs), matching the block's order
  const idx = b.txs.length ? await api(`/txs?from_height=${h.height}&to_height=${h.height}&order=asc&limit=100`) : {txs: []};
  const byIndex = {};
  idx.txs.forEach(t => { byIndex[t.index] = t.tx_hash; });
  const txRows = b.txs.map((t, i) => [String(i), byIndex[i] ? txLink(byIndex[i]) : "", `<span class="tag">${esc(t.type)}</span>`,
    addr(t.sender), String(t.nonce), `<code>${esc(JSON.stringify(t.payload)).slice(0, 160)}</code>`]);
  const sigs = (b.commit && b.commit.signatures) || [];
  view.innerHTML = `<h1>Block ${h.height}</h1>
    <div class="pager">${h.height > 1 ? `<a href="#/block/${h.height - 1}">← ${h.height - 1}</a>` : ""}
    ${h.height < head ? ` · <a href="#/block/${h.height + 1}">${h.height + 1} →</a>` : ""}</div>
    ${kv(rows)}
    <h2>Transactions (${b.txs.length})</h2>
    ${table([{t: "#"}, {t: "tx hash"}, {t: "type"}, {t: "sender"}, {t: "nonce"}, {t: "payload"}], txRows, "block-txs")}
    <h2>Commit: round ${b.commit ? b.commit.round : "?"}, ${sigs.length} precommit signatures</h2>
    ${table([{t: "validator"}, {t: "signature"}], sigs.map(s => [addr(s.validator, 64), `<span class="mono">${short(s.signature, 32)}</span>`]), "block-sigs")}`;
  void hashes;
}

async function pageTx(hash) {
  const t = await api(`/txs/${encodeURIComponent(hash)}`);
  const tx = t.tx;
  view.innerHTML = `<h1>Transaction</h1>${kv([["hash", `<span class="mono">${esc(t.tx_hash)}</span>`],
    ["status", `<span class="tag ${t.status === "committed" ? "ok" : ""}">${esc(t.status)}</span>`],
    ["block", t.height ? blockLink(t.height) + ` (index ${t.index})` : "pending"], ["type", esc(tx.type)],
    ["sender", addr(tx.sender, 64)], ["nonce", String(tx.nonce)], ["chain_id", esc(tx.chain_id)],
    ["signature", `<span class="mono">${esc(tx.signature)}</span>`]])}
    <h2>Payload</h2><pre class="mono">${esc(JSON.stringify(tx.payload, null, 2))}</pre>`;
}

async function pageAccount(address) {
  const [a, rep] = await Promise.all([api(`/accounts/${encodeURIComponent(address)}`),
    api(`/reputation/${encodeURIComponent(address)}`).catch(() => null)]);
  view.innerHTML = `<h1>Account</h1>${kv([["address", `<span class="mono">${esc(a.address)}</span>`],
    ["balance", String(a.balance)], ["nonce", String(a.nonce)], ["pending nonce", String(a.pending_nonce)],
    ["FML reputation", rep && !rep.newcomer ? `${scaled(rep.global_reputation)} over ${rep.rounds} rounds` : "newcomer"]])}
    <h2>Transactions sent</h2><div id="acct-txs"></div><div class="pager"><button id="more" hidden>older</button></div>`;
  const box = document.getElementById("acct-txs");
  const more = document.getElementById("more");
  let cursor = null;
  const rows = [];
  async function load() {
    const q = `/txs?sender=${encodeURIComponent(address)}&limit=25` + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : "");
    const page = await api(q);
    page.txs.forEach(t => rows.push([txLink(t.tx_hash), blockLink(t.height), `<span class="tag">${esc(t.type)}</span>`,
      String(t.tx ? t.tx.nonce : ""), `<code>${t.tx ? esc(JSON.stringify(t.tx.payload)).slice(0, 120) : ""}</code>`]));
    box.innerHTML = table([{t: "tx hash"}, {t: "block"}, {t: "type"}, {t: "nonce"}, {t: "payload"}], rows, "account-txs");
    cursor = page.next_cursor;
    more.hidden = !cursor;
  }
  more.addEventListener("click", () => { load().catch(showError); });
  await load();
}

async function pageValidators() {
  const last = 100;
  const v = await api(`/validators?last=${last}`);
  const rows = v.validators.map(x => {
    const p = x.provider || {};
    const pct = (100 * x.proposer_share).toFixed(1);
    return [esc(x.name), addr(x.address), `${x.proposed} (${pct} %)<div class="bar"><span style="width:${pct}%"></span></div>`,
      String(p.capacity !== undefined ? p.capacity : ""), String(p.backlog !== undefined ? p.backlog : ""),
      p.reputation_ppm !== undefined ? (p.reputation_ppm / 1e4).toFixed(1) + " %" : "",
      x.poc_contribution === null || x.poc_contribution === undefined ? "–" : String(x.poc_contribution),
      String(x.recent_contribution), String(p.allocated_total !== undefined ? p.allocated_total : ""),
      String(p.delivered_total !== undefined ? p.delivered_total : ""),
      `${x.tasks.allocated} / ${x.tasks.done} / ${x.tasks.expired}`];
  });
  view.innerHTML = `<h1>Validators</h1>
    <p>Proposer share over heights ${v.window.from || "–"}..${v.window.to} (${v.window.blocks} blocks). Proof of contribution:
    provider capacity, backlog and reputation decide the student model's task allocation; PoC contribution (allocated work ×
    reputation, recorded at height ${v.poc_weights_height === null || v.poc_weights_height === undefined ? "–" : v.poc_weights_height})
    weighs the next proposer ranking.</p>
    ${table([{t: "name"}, {t: "address"}, {t: "proposed (share)"}, {t: "capacity", num: true}, {t: "backlog", num: true},
      {t: "reputation", num: true}, {t: "PoC contribution", num: true}, {t: "recent delivered × rep.", num: true}, {t: "work allocated", num: true},
      {t: "work delivered", num: true}, {t: "tasks allocated / done / expired"}], rows, "validators")}`;
}

async function pageTasks() {
  const t = await api("/tasks?limit=200");
  const rows = t.tasks.slice().reverse().map(x => [`<span class="mono">${short(x.id, 12)}</span>`,
    `<span class="tag ${x.status === "done" ? "ok" : ""}">${esc(x.status)}</span>`, addr(x.submitter),
    String(x.work), esc(JSON.stringify(x.demand)), String(x.deadline_ms), x.assigned_to ? addr(x.assigned_to) : "",
    x.arrival_height !== undefined ? blockLink(x.arrival_height) : ""]);
  view.innerHTML = `<h1>Task queue</h1><p>${t.total} tasks committed (newest first).</p>
    ${table([{t: "task"}, {t: "status"}, {t: "submitter"}, {t: "work", num: true}, {t: "demand"}, {t: "deadline ms", num: true},
      {t: "allocated to"}, {t: "arrived at"}], rows, "tasks")}`;
}

async function pageFml() {
  const r = await api("/fml/rounds?limit=100");
  const rows = r.rounds.map(x => [`<a class="round-link" href="#/fml/${x.id}">${x.id}</a>`,
    `<span class="tag">${esc(x.phase)}</span>`, addr(x.opener), String(x.joined_count),
    x.opened_height !== undefined ? blockLink(x.opened_height) : "", scaled(x.budget), scaled(x.paid)]);
  view.innerHTML = `<h1>FML rounds</h1><p>${r.total} rounds, newest first.</p>
    ${table([{t: "round"}, {t: "phase"}, {t: "opener (MSP)"}, {t: "joined", num: true}, {t: "opened at"}, {t: "budget", num: true}, {t: "paid", num: true}], rows, "rounds")}`;
}

async function pageRound(id) {
  const r = await api(`/fml/rounds/${encodeURIComponent(id)}`);
  const flags = r.flags || {};
  const coalitions = (r.coalitions || []).map(c => {
    const members = c.members.map(a => {
      const m = (r.members || {})[a] || {};
      const flag = flags[a];
      return [addr(a) + (a === c.head ? ' <span class="tag">head</span>' : ""), m.frequency === undefined ? "" : (m.frequency / SCALE / 1e9).toFixed(3),
        scaled(m.reputation), scaled(m.weight), r.payouts && r.payouts[a] !== undefined ? scaled(r.payouts[a]) : "",
        flag ? `<span class="tag flag">${esc(typeof flag === "object" ? JSON.stringify(flag) : flag)}</span>` :
          (r.phase === "closed" ? '<span class="tag ok">ok</span>' : "")];
    });
    return `<div class="coalition" data-head="${esc(c.head)}"><b>Coalition of head ${addr(c.head, 16)}</b> —
      ${c.members.length} members, C<sub>k</sub>* = ${scaled(c.incentive)}, coalition reputation ${scaled(c.coalition_reputation)},
      MSP utility ${scaled(c.msp_utility)}, deadline ${scaled(c.deadline)} s
      ${table([{t: "member"}, {t: "f_i* (GHz)", num: true}, {t: "reputation", num: true}, {t: "weight", num: true},
        {t: "payout", num: true}, {t: "misreport flag"}], members)}</div>`;
  }).join("");
  view.innerHTML = `<h1>FML round ${esc(r.id)}</h1>
    ${kv([["phase", `<span class="tag" id="round-phase">${esc(r.phase)}</span>`], ["opener (MSP)", addr(r.opener, 64)],
      ["joined", String((r.joined || []).length)], ["coalitions", String((r.coalitions || []).length)],
      ["sitting out", String((r.sitting_out || []).length)], ["paid in total", r.paid !== undefined ? scaled(r.paid) : ""]])}
    <h2>Coalitions (heads, members, C<sub>k</sub>*, f<sub>i</sub>*, payouts, flags)</h2>
    ${coalitions || "<p>Not planned yet (registration still open).</p>"}
    <h2>Reputation over rounds</h2><div class="chart" id="rep-chart"></div>
    <h2>Payouts this round</h2><div class="chart" id="pay-chart"></div>`;
  const learners = (r.joined || []).slice(0, 12);
  const reps = await Promise.all(learners.map(a => api(`/reputation/${a}`).catch(() => null)));
  const roundIds = [...new Set(reps.flatMap(x => (x ? x.history.map(h => h.round) : [])))].sort((a, b) => a - b);
  if (roundIds.length) {
    const series = learners.map((a, i) => {
      const by = {};
      (reps[i] ? reps[i].history : []).forEach(h => { by[h.round] = h.overall / SCALE; });
      return {label: a.slice(0, 8), values: roundIds.map(x => (by[x] !== undefined ? by[x] : null))};
    });
    lineChart(document.getElementById("rep-chart"), "overall reputation per round", "round", roundIds, series);
  } else {
    document.getElementById("rep-chart").textContent = "No settled round for these learners yet.";
  }
  const paid = Object.entries(r.payouts || {});
  if (paid.length) {
    const xs = paid.map((_, i) => i + 1);
    lineChart(document.getElementById("pay-chart"), "payout per learner (tokens; x = learner # in address order)", "learner",
      xs, [{label: "payout", values: paid.map(([, v]) => v / SCALE)}]);
  } else {
    document.getElementById("pay-chart").textContent = "No payouts yet (round not closed).";
  }
}

async function pageNet() {
  const n = await api("/net_info");
  const rows = n.peers.map(p => [esc(p.name), addr(p.peer_id), `<span class="mono">${esc(p.url)}</span>`,
    p.reachable ? '<span class="tag ok">yes</span>' : `<span class="tag flag">no (${esc(p.error || "")})</span>`,
    p.height === null ? "" : String(p.height), p.rtt_ms === null ? "" : String(p.rtt_ms),
    p.last_message_ms ? fmtTime(p.last_message_ms) : "never", String(p.messages_received)]);
  view.innerHTML = `<h1>Peers seen from ${esc(n.name)}</h1><p>${n.n_reachable} of ${n.n_peers} reachable; this peer is at height ${n.height}.</p>
    ${table([{t: "name"}, {t: "peer id"}, {t: "url"}, {t: "reachable"}, {t: "height", num: true}, {t: "rtt ms", num: true},
      {t: "last message (UTC)"}, {t: "batches received", num: true}], rows, "peers")}`;
}

// ---------------------------------------------------------------- router
function showError(e) {
  view.innerHTML = `<h1>Not available</h1><p class="err">${esc(e.message || e)}</p>`;
}
async function route() {
  onBlock = null;
  destroyCharts();
  const parts = (location.hash || "#/").slice(2).split("/").map(decodeURIComponent);
  const [page, arg] = parts;
  try {
    if (!page) { await pageHome(); }
    else if (page === "block") { await pageBlock(arg); }
    else if (page === "tx") { await pageTx(arg); }
    else if (page === "account") { await pageAccount(arg); }
    else if (page === "validators") { await pageValidators(); }
    else if (page === "tasks") { await pageTasks(); }
    else if (page === "fml" && arg) { await pageRound(arg); }
    else if (page === "fml") { await pageFml(); }
    else if (page === "net") { await pageNet(); }
    else { showError(new Error("unknown page " + page)); }
  } catch (e) {
    showError(e);
  }
}
document.getElementById("search").addEventListener("submit", ev => {
  ev.preventDefault();
  const q = document.getElementById("q").value.trim().toLowerCase();
  if (/^\d+$/.test(q)) { location.hash = `#/block/${q}`; }
  else if (/^[0-9a-f]{64}$/.test(q)) {
    // a tx hash or an address (both 64 hex): ask for the tx first
    fetch(`/txs/${q}`).then(r => { location.hash = r.ok ? `#/tx/${q}` : `#/account/${q}`; });
  }
});
window.addEventListener("hashchange", route);
connectEvents();
route();
