// The live board: a snapshot from the read API, then the workspace's events over the socket.
// Every text from the server (names, daemons' error messages) goes in as textContent, never
// as HTML. Events with a `seq` are applied once each; after a drop the socket reopens with
// ?after=<last seq> and the server replays the gap, or answers sync:reset and we refetch.

const root = document.getElementById("board");
const api = root.dataset.api;
const csrf = root.querySelector("input[name=csrfmiddlewaretoken]").value;
const FAILURES_SHOWN = 50;

const state = {
  runtimes: new Map(), // id -> runtime, as the API gives it
  active: [],
  failures: [],
  sweeper: null,
  lastSeq: null, // the newest event applied; null while events carry none
  clockOffset: 0, // database clock minus this browser's, in ms
};

// --- Snapshot -------------------------------------------------------------------------------

async function getJSON(path) {
  const response = await fetch(api + path, { headers: { Accept: "application/json" } });
  if (response.status === 401) location.assign(root.dataset.login + "?next=" + location.pathname);
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

async function loadRuntimes() {
  const runtimes = new Map();
  let page = await getJSON("runtimes?limit=200");
  const first = page;
  for (const r of page.runtimes) runtimes.set(r.id, r);
  for (let more = 0; page.next_cursor && more < 20; more++) {
    page = await getJSON("runtimes?limit=200&cursor=" + encodeURIComponent(page.next_cursor));
    for (const r of page.runtimes) runtimes.set(r.id, r);
  }
  state.runtimes = runtimes;
  state.sweeper = first.sweeper;
  state.clockOffset = Date.parse(first.now) - Date.now();
  return first.seq;
}

async function loadActive() {
  const page = await getJSON("tasks?status=dispatched,running&limit=200");
  state.active = page.tasks;
  return page.seq;
}

async function loadFailures() {
  const page = await getJSON(`tasks?status=failed&limit=${FAILURES_SHOWN}`);
  state.failures = page.tasks;
  return page.seq;
}

// The oldest seq of the answers: replaying from it may repeat an event, never miss one.
async function loadSnapshot() {
  const seqs = await Promise.all([loadRuntimes(), loadActive(), loadFailures()]);
  render();
  const known = seqs.filter((s) => typeof s === "number");
  return known.length ? Math.min(...known) : null;
}

const pending = new Map();
function refetchSoon(what, load) {
  // Events come in bursts (a sweep's chunk): one refetch per burst.
  clearTimeout(pending.get(what));
  pending.set(what, setTimeout(() => load().then(render).catch(console.error), 300));
}

// --- Socket ---------------------------------------------------------------------------------

const connection = document.getElementById("connection");
function showConnection(value) {
  connection.dataset.state = value;
  connection.textContent = value;
}

let retryDelay = 500;
let quietTimer = null;

function connect(after) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const query = after === null ? "" : `?after=${after}`;
  const socket = new WebSocket(`${scheme}//${location.host}${root.dataset.socket}${query}`);
  let replaying = after !== null;
  showConnection(replaying ? "replaying" : "connecting");
  socket.onopen = () => {
    retryDelay = 500;
    if (!replaying) showConnection("live");
    settleReplay(socket, () => (replaying = false));
  };
  socket.onmessage = (message) => {
    if (replaying) settleReplay(socket, () => (replaying = false));
    receive(JSON.parse(message.data));
  };
  socket.onclose = (closed) => {
    if (closed.code === 4401) return location.assign(root.dataset.login);
    if (closed.code === 4403) return showConnection("no access");
    showConnection("reconnecting");
    setTimeout(reconnect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 10000);
  };
}

// Replay ends with no marker: the board calls it live once the burst has gone quiet.
function settleReplay(socket, done) {
  clearTimeout(quietTimer);
  quietTimer = setTimeout(() => {
    if (socket.readyState === WebSocket.OPEN) {
      done();
      showConnection("live");
    }
  }, 400);
}

async function reconnect() {
  if (state.lastSeq !== null) return connect(state.lastSeq);
  // Without a sequence nothing can be replayed: what happened meanwhile is in a fresh snapshot.
  try {
    await loadSnapshot();
  } catch (error) {
    showConnection("reconnecting");
    setTimeout(reconnect, retryDelay);
    return;
  }
  connect(null);
}

function receive(event) {
  if (typeof event.seq === "number") {
    if (event.type === "sync:reset") {
      state.lastSeq = event.seq;
      loadSnapshot().catch(console.error);
      return;
    }
    if (state.lastSeq !== null && event.seq <= state.lastSeq) return; // seen already
    state.lastSeq = event.seq;
  }
  const handler = handlers[event.type];
  if (handler) handler(event.payload || {}, event);
}

const handlers = {
  "daemon:register"(payload) {
    if (payload.action === "stale_sweep" || payload.action === "deregister") {
      for (const id of payload.runtime_ids || []) {
        const runtime = state.runtimes.get(id);
        if (runtime) Object.assign(runtime, { status: "offline", offline_at: dbNow() });
      }
    }
    if (payload.action === "dismiss") {
      for (const id of payload.runtime_ids || []) state.runtimes.delete(id);
    }
    render();
    refetchSoon("runtimes", loadRuntimes);
  },
  "task:failed"(payload, event) {
    if (!state.failures.some((t) => t.id === payload.task_id)) {
      state.failures.unshift(failureFromEvent(payload, event));
      state.failures.length = Math.min(state.failures.length, FAILURES_SHOWN);
    }
    state.active = state.active.filter((t) => t.id !== payload.task_id);
    render();
    refetchSoon("runtimes", loadRuntimes);
    refetchSoon("active", loadActive);
  },
  "task:queued"(payload) {
    const failed = state.failures.find((t) => t.id === payload.retry_of);
    if (failed) failed.retry = payload.task_id;
    render();
  },
  "agent:status"(payload) {
    for (const runtime of state.runtimes.values()) {
      for (const agent of runtime.agents) if (agent.id === payload.agent_id) agent.status = payload.status;
    }
    // Claims and completions move agents: the active tasks have changed.
    refetchSoon("active", loadActive);
    refetchSoon("runtimes", loadRuntimes);
  },
};

function failureFromEvent(payload, event) {
  const runtime = state.runtimes.get(payload.runtime_id);
  const agent = runtime && runtime.agents.find((a) => a.id === payload.agent_id);
  return {
    id: payload.task_id,
    status: "failed",
    failure_reason: payload.failure_reason,
    error: payload.error,
    completed_at: event.at || dbNow(),
    retry: payload.retry_task_id || null,
    agent: { id: payload.agent_id, name: agent ? agent.name : "agent" },
    runtime: runtime ? { id: runtime.id, name: runtime.name } : null,
  };
}

// --- Actions --------------------------------------------------------------------------------

async function post(path, button) {
  button.disabled = true;
  const response = await fetch(api + path, {
    method: "POST",
    headers: { "X-CSRFToken": csrf, Accept: "application/json" },
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    button.disabled = false;
    button.title = answer.error || `HTTP ${response.status}`;
    button.textContent = response.status === 409 ? "Refused" : "Failed";
  }
  return response.ok ? answer : null;
}

async function retry(task, button) {
  const answer = await post(`tasks/${task.id}/retry`, button);
  if (answer) {
    task.retry = answer.task_id;
    render();
  }
}

async function dismiss(runtime, button) {
  if (await post(`runtimes/${runtime.id}/dismiss`, button)) {
    state.runtimes.delete(runtime.id);
    render();
  }
}

// --- Rendering ------------------------------------------------------------------------------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else if (name === "onclick") node.addEventListener("click", value);
    else if (value !== null && value !== undefined) node.setAttribute(name, value);
  }
  node.append(...children.filter(Boolean));
  return node;
}

const dbNow = () => new Date(Date.now() + state.clockOffset).toISOString();

function ago(iso) {
  const seconds = Math.max(0, Math.round((Date.now() + state.clockOffset - Date.parse(iso)) / 1000));
  if (seconds < 90) return `${seconds} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} d`;
}

// A time that counts live: the ticker rewrites every [data-since] once a second.
function since(iso, before = "", after = "") {
  if (!iso) return el("span", { class: "since", text: before ? "never seen" : "—" });
  return el("time", {
    class: "since", datetime: iso, "data-since": iso, "data-before": before,
    "data-after": after, title: new Date(iso).toLocaleString(), text: before + ago(iso) + after,
  });
}

function tick() {
  for (const node of document.querySelectorAll("[data-since]")) {
    node.textContent = node.dataset.before + ago(node.dataset.since) + node.dataset.after;
  }
}

function render() {
  renderBanner();
  renderRuntimes();
  renderActive();
  renderFailures();
}

function renderBanner() {
  const banner = document.getElementById("banner");
  const sweeper = state.sweeper;
  banner.hidden = !(sweeper && sweeper.message);
  banner.dataset.kind = sweeper && sweeper.braked ? "braked" : "blind";
  banner.textContent = sweeper ? sweeper.message : "";
}

function renderRuntimes() {
  const daemons = new Map();
  for (const runtime of state.runtimes.values()) {
    const key = runtime.daemon_id;
    if (!daemons.has(key)) daemons.set(key, []);
    daemons.get(key).push(runtime);
  }
  const online = [...state.runtimes.values()].filter((r) => r.status === "online").length;
  document.getElementById("runtime-counts").textContent =
    `${online} online · ${state.runtimes.size - online} offline`;
  const groups = [...daemons.entries()].sort(([a], [b]) => a.localeCompare(b));
  document.getElementById("daemons").replaceChildren(
    ...(groups.length ? groups.map(([id, runtimes]) => daemonCard(id, runtimes))
      : [el("p", { class: "empty", text: "No runtimes: no daemon has registered yet." })]),
  );
}

function daemonCard(daemonId, runtimes) {
  const device = runtimes.find((r) => r.device)?.device || "";
  const down = runtimes.every((r) => r.status === "offline");
  return el("article", { class: "daemon", "data-daemon": daemonId, "data-down": down },
    el("header", {},
      el("span", { class: "daemon-id", text: daemonId }),
      device && device !== daemonId ? el("span", { class: "device", text: device }) : null),
    el("ul", { class: "rows" }, ...runtimes.map(runtimeRow)));
}

function runtimeRow(runtime) {
  const offline = runtime.status === "offline";
  const agents = runtime.agents.map((a) => `${a.name} (${a.status})`).join(", ");
  return el("li", { class: "runtime", "data-runtime-id": runtime.id, "data-status": runtime.status },
    el("span", { class: "status", "data-status": runtime.status, text: runtime.status }),
    el("span", { class: "name" },
      el("strong", { text: runtime.provider }),
      el("span", { class: "muted", text: agents || "no agent", title: agents })),
    el("span", { class: "work", text: `${runtime.active_tasks} active` }),
    el("span", { class: "seen" },
      since(runtime.last_seen_at, "seen ", " ago"),
      offline && runtime.offline_at ? since(runtime.offline_at, "offline for ") : null),
    offline ? el("button", { class: "small", title: "Hide it from the board: gone for good",
      onclick: (e) => dismiss(runtime, e.currentTarget), text: "Dismiss" }) : el("span"));
}

function renderActive() {
  document.getElementById("active-count").textContent = String(state.active.length);
  document.getElementById("active-tasks").replaceChildren(
    ...(state.active.length ? state.active.map((task) =>
      el("li", { class: "task", "data-task-id": task.id, "data-status": task.status },
        el("span", { class: "status", "data-status": task.status, text: task.status }),
        el("span", { class: "name" },
          el("strong", { text: task.agent.name }),
          el("span", { class: "muted", text: task.runtime ? task.runtime.name : "" })),
        since(task.started_at || task.dispatched_at, task.started_at ? "for " : "waiting ", ""))) :
      [el("li", { class: "empty", text: "Nothing running." })]),
  );
}

function renderFailures() {
  document.getElementById("failures").replaceChildren(
    ...(state.failures.length ? state.failures.map(failureRow) :
      [el("li", { class: "empty", text: "No failures." })]),
  );
}

function failureRow(task) {
  const action = task.retry
    ? el("span", { class: "retried", text: "retried" })
    : el("button", { class: "small", onclick: (e) => retry(task, e.currentTarget), text: "Retry" });
  return el("li", { class: "failure", "data-task-id": task.id },
    el("span", { class: "reason", "data-reason": task.failure_reason, text: task.failure_reason || "failed" }),
    el("span", { class: "name" },
      el("strong", { text: task.agent.name, title: task.agent.name }),
      el("span", { class: "muted", text: task.runtime ? task.runtime.name : "runtime gone" })),
    since(task.completed_at, "", " ago"),
    action,
    el("p", { class: "error", text: task.error || "" }));
}

// --- Start ----------------------------------------------------------------------------------

setInterval(tick, 1000);
// The sweeper's banner has no event of its own: it is reread with the runtimes.
setInterval(() => loadRuntimes().then(render).catch(console.error), 30000);
loadSnapshot().then(
  (seq) => {
    state.lastSeq = seq;
    connect(seq);
  },
  (error) => {
    console.error(error);
    showConnection("reconnecting");
    setTimeout(reconnect, retryDelay);
  },
);
