// The web chat page: plain script, no build step. It logs in over HTTP
// (the gateway forwards the CGIs from this page's own origin), then holds
// one WebSocket to the gateway's long link in JSON mode (package
// examples/im/link documents the protocol) and does everything else over
// it: syncs after auth and after every sync notify, lists contacts,
// sends. When the socket drops it reconnects with backoff and jitter and
// syncs again, which fetches whatever was missed. Image and video messages
// show their thumbnail inline; a click opens the full file.
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  session: null,       // {userId, name, token, deviceId}
  syncKey: "",         // opaque, base64 as protojson writes bytes
  contacts: new Map(), // userId → {userId, name, nickname}
  messages: new Map(), // peer userId → [Message], in sync order
  seen: new Set(),     // "from/clientMsgId" already shown
  peer: "",            // the open conversation
  unread: new Map(),   // peer userId → count
  media: new Map(),    // "thumb/<id>" or "download/<id>" → Promise of a blob URL
};

// ---- HTTP (login and register only) ----

async function cgi(path, body) {
  const r = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(j.message || `HTTP ${r.status}`);
  return j;
}

function deviceId() {
  // One device per tab: two tabs are two devices of the same user, not one
  // replacing the other.
  let d = sessionStorage.getItem("im.device");
  if (!d) {
    d = "web-" + Math.random().toString(36).slice(2, 10);
    sessionStorage.setItem("im.device", d);
  }
  return d;
}

async function login(register) {
  $("login-error").textContent = "";
  const name = $("name").value.trim(), password = $("password").value;
  try {
    if (register) await cgi("/cgi-bin/account/register", { name, password });
    const r = await cgi("/cgi-bin/account/login", { name, password, deviceId: deviceId() });
    state.session = { userId: String(r.userId), name, token: r.token, deviceId: deviceId() };
    sessionStorage.setItem("im.session", JSON.stringify(state.session));
    start();
  } catch (e) {
    $("login-error").textContent = e.message;
  }
}

// ---- the long link ----

const link = {
  ws: null,
  nextId: 1,
  pending: new Map(), // request id → {resolve, reject, timer}
  backoff: 100,
  connects: 0,
  lastHeard: 0,
  heartbeat: 30000,
  timer: null,
  stopped: false,
};

function setStatus(s, text) {
  $("status").dataset.state = s;
  $("status").dataset.connects = String(link.connects);
  $("status").textContent = text || s;
}

async function linkURL() {
  const c = await (await fetch("config.json", { cache: "no-store" })).json();
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.hostname}:${c.link_port}${c.link_path}`;
}

async function connect() {
  if (link.stopped) return;
  let url;
  try {
    url = await linkURL();
  } catch (e) {
    return retry();
  }
  const ws = new WebSocket(url);
  link.ws = ws;
  ws.authId = link.nextId++;
  ws.onopen = () => ws.send(JSON.stringify({ type: "auth", id: ws.authId, token: state.session.token, device_id: state.session.deviceId }));
  ws.onmessage = (ev) => {
    link.lastHeard = Date.now();
    let m;
    try { m = JSON.parse(ev.data); } catch { return; }
    onMessage(ws, m);
  };
  ws.onclose = (ev) => onClose(ws, ev);
}

function onMessage(ws, m) {
  if (m.type === "response" && (m.id || 0) === ws.authId) { // the auth's answer
    if (m.code) { ws.close(); return final(m.message || m.code, m.code === "unauthenticated"); }
    link.connects++;
    link.backoff = 100;
    link.heartbeat = Number(m.body && m.body.heartbeatMs) || 30000;
    setStatus("connected");
    startHeartbeat(ws);
    loadContacts();
    sync();
    return;
  }
  if (m.type === "response") {
    const p = link.pending.get(m.id);
    if (!p) return;
    link.pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.code) p.reject(Object.assign(new Error(m.message || m.code), { code: m.code }));
    else p.resolve(m.body || {});
    return;
  }
  if (m.type === "push" && m.cmd === 1) { sync(); return; }
  if (m.type === "goaway") {
    // The close frame that follows carries the same reason; remember it.
    ws.goaway = m;
  }
}

function onClose(ws, ev) {
  if (link.ws !== ws) return;
  link.ws = null;
  clearInterval(link.timer);
  for (const [, p] of link.pending) { clearTimeout(p.timer); p.reject(new Error("connection lost")); }
  link.pending.clear();
  // Close codes 4000 + status (package link): 4010 aborted (replaced by
  // another login of this device) and 4016 unauthenticated are final.
  if (ev.code === 4010) return final("this device logged in elsewhere", false);
  if (ev.code === 4016) return final(ev.reason || "session ended; log in again", true);
  retry();
}

function retry() {
  if (link.stopped) return;
  setStatus("reconnecting");
  const wait = Math.random() * link.backoff + 1;
  link.backoff = Math.min(link.backoff * 2, 10000);
  setTimeout(connect, wait);
}

function final(why, relogin) {
  link.stopped = true;
  setStatus("offline", "offline: " + why);
  if (relogin) logout();
}

function startHeartbeat(ws) {
  clearInterval(link.timer);
  link.lastHeard = Date.now();
  link.timer = setInterval(() => {
    if (Date.now() - link.lastHeard > 2 * link.heartbeat + 1000) { ws.close(); return; } // silent: dead
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "ping", id: link.nextId++ }));
  }, link.heartbeat);
}

function call(method, body) {
  return new Promise((resolve, reject) => {
    const ws = link.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return reject(new Error("not connected; retrying"));
    const id = link.nextId++;
    const timer = setTimeout(() => { link.pending.delete(id); reject(new Error("timed out")); }, 15000);
    link.pending.set(id, { resolve, reject, timer });
    ws.send(JSON.stringify({ type: "request", id, method, timeout_ms: 10000, body }));
  });
}

// ---- sync ----

let syncing = false, again = false;

// sync pulls until nothing more waits; a notify during a sync runs one
// more round after it, so none is lost.
async function sync() {
  if (syncing) { again = true; return; }
  syncing = true;
  try {
    do {
      again = false;
      for (;;) {
        const r = await call("im.Sync/Sync", { syncKey: state.syncKey, limit: 200 });
        for (const it of r.items || []) apply(it);
        state.syncKey = r.syncKey || state.syncKey;
        if (!r.continueFlag) break;
      }
    } while (again);
  } catch (e) {
    // The link dropped or the backend hiccuped: the next connect syncs.
  } finally {
    syncing = false;
  }
  render();
}

function apply(it) {
  if (it.message) {
    const m = it.message, me = state.session.userId;
    const from = String(m.fromUserId || ""), to = String(m.toUserId || "");
    const key = from + "/" + m.clientMsgId;
    if (state.seen.has(key)) return;
    state.seen.add(key);
    const peer = from === me ? to : from;
    if (!state.messages.has(peer)) state.messages.set(peer, []);
    state.messages.get(peer).push(m);
    if (!state.contacts.has(peer)) { state.contacts.set(peer, { userId: peer, name: "user " + peer }); lookup(peer); }
    if (peer !== state.peer && from !== me) state.unread.set(peer, (state.unread.get(peer) || 0) + 1);
  } else if (it.contact) {
    const c = it.contact.contact || {};
    if (it.contact.removed) state.contacts.delete(String(c.userId));
    else state.contacts.set(String(c.userId), { userId: String(c.userId), name: c.name, nickname: c.nickname });
  }
}

async function loadContacts() {
  try {
    const r = await call("im.Contact/ListContacts", {});
    for (const c of r.contacts || []) state.contacts.set(String(c.userId), { userId: String(c.userId), name: c.name, nickname: c.nickname });
    render();
  } catch (e) { /* the next connect tries again */ }
}

async function lookup(id) {
  try {
    const p = await call("im.Account/GetProfile", { userId: id });
    const c = state.contacts.get(id);
    if (c && p.name) { c.name = p.name; render(); }
  } catch (e) { /* keep "user N" */ }
}

// ---- media ----

// mediaURL resolves to a blob URL of a media's thumbnail or file. An <img>
// cannot send the session token, so the page fetches with it and shows
// the blob; the gateway forwards these paths to sendmedia, which checks
// the token and that the media was sent to this user. A failure is not
// cached: the next render asks again.
function mediaURL(kind, id) {
  const key = kind + "/" + id;
  let p = state.media.get(key);
  if (!p) {
    p = (async () => {
      const r = await fetch(`/cgi-bin/media/${kind}/${encodeURIComponent(id)}`, {
        headers: { Authorization: "Bearer " + state.session.token },
      });
      if (!r.ok) {
        const j = await r.json().catch(() => ({}));
        throw new Error(j.message || `HTTP ${r.status}`);
      }
      return URL.createObjectURL(await r.blob());
    })();
    p.catch(() => state.media.delete(key));
    state.media.set(key, p);
  }
  return p;
}

// mediaNode is an image or video message's inline part: the thumbnail
// (laid out at its size before it arrives), which opens the full file.
function mediaNode(m) {
  const ref = m.media || {};
  const box = document.createElement("span");
  box.className = "media";
  const video = m.type === "MESSAGE_TYPE_VIDEO";
  if (video) box.classList.add("video");
  if (ref.thumbMediaId) {
    const img = document.createElement("img");
    img.dataset.mediaId = ref.mediaId;
    img.alt = video ? "video" : "image";
    if (ref.thumbWidth && ref.thumbHeight) { img.width = ref.thumbWidth; img.height = ref.thumbHeight; }
    mediaURL("thumb", ref.thumbMediaId).then(
      (url) => { img.src = url; img.dataset.state = "shown"; },
      (e) => { img.dataset.state = "failed"; img.title = e.message; });
    box.append(img);
  }
  if (video) {
    const label = document.createElement("span");
    label.className = "play";
    label.textContent = "▶ video" + (ref.durationMs ? " " + Math.round(ref.durationMs / 1000) + " s" : "");
    box.append(label);
  }
  box.title = "open";
  box.onclick = () => {
    mediaURL("download", ref.mediaId).then((url) => window.open(url, "_blank"), (e) => { $("send-error").textContent = e.message; });
  };
  return box;
}

// ---- the page ----

function render() {
  const ul = $("contacts");
  ul.replaceChildren();
  for (const c of [...state.contacts.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    const li = document.createElement("li");
    li.dataset.userId = c.userId;
    li.dataset.name = c.name;
    li.textContent = c.nickname && c.nickname !== c.name ? `${c.nickname} (${c.name})` : c.name;
    if (c.userId === state.peer) li.className = "selected";
    const n = state.unread.get(c.userId);
    if (n) {
      const b = document.createElement("span");
      b.className = "unread";
      b.textContent = String(n);
      li.append(b);
    }
    li.onclick = () => open(c.userId);
    ul.append(li);
  }
  const ol = $("messages");
  ol.replaceChildren();
  const peer = state.contacts.get(state.peer);
  $("peer-name").textContent = peer ? peer.name : "Pick a contact";
  $("text").disabled = $("send-btn").disabled = !peer;
  for (const m of state.messages.get(state.peer) || []) {
    const li = document.createElement("li");
    const mine = String(m.fromUserId) === state.session.userId;
    li.className = mine ? "mine" : "theirs";
    li.dataset.from = String(m.fromUserId);
    li.dataset.clientMsgId = m.clientMsgId;
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = m.type === "MESSAGE_TYPE_TEXT" || m.text ? m.text : `[${(m.type || "").replace("MESSAGE_TYPE_", "").toLowerCase()}]`;
    const time = document.createElement("span");
    time.className = "time";
    time.textContent = m.sentUnixMs ? new Date(Number(m.sentUnixMs)).toLocaleTimeString() : "";
    if (m.media && m.media.mediaId) {
      text.hidden = true; // the fallback text ("[Image]") is for clients that cannot show it
      li.append(mediaNode(m), text, time);
    } else {
      li.append(text, time);
    }
    ol.append(li);
  }
  ol.scrollTop = ol.scrollHeight;
}

function open(id) {
  state.peer = id;
  state.unread.delete(id);
  render();
  $("text").focus();
}

async function send(ev) {
  ev.preventDefault();
  const text = $("text").value;
  if (!text || !state.peer) return;
  $("send-error").textContent = "";
  const clientMsgId = "web-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 8);
  try {
    await call("im.Send/SendText", { toUserId: state.peer, clientMsgId, text });
    $("text").value = "";
    sync(); // the message comes back through sync, in the inbox's order
  } catch (e) {
    $("send-error").textContent = e.message;
  }
}

async function addContact(ev) {
  ev.preventDefault();
  $("add-error").textContent = "";
  try {
    const r = await call("im.Contact/AddContact", { name: $("add-name").value.trim() });
    const c = r.contact || {};
    state.contacts.set(String(c.userId), { userId: String(c.userId), name: c.name, nickname: c.nickname });
    $("add-name").value = "";
    open(String(c.userId));
  } catch (e) {
    $("add-error").textContent = e.message;
  }
}

function start() {
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  $("me").textContent = state.session.name;
  link.stopped = false;
  connect();
}

function logout() {
  link.stopped = true;
  if (link.ws) link.ws.close();
  sessionStorage.removeItem("im.session");
  state.session = null;
  state.syncKey = "";
  state.contacts.clear(); state.messages.clear(); state.seen.clear(); state.unread.clear(); state.peer = "";
  for (const p of state.media.values()) p.then((url) => URL.revokeObjectURL(url), () => {});
  state.media.clear();
  $("app").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("me").textContent = "";
}

$("login").addEventListener("submit", (ev) => { ev.preventDefault(); login(false); });
$("register-btn").addEventListener("click", () => login(true));
$("compose").addEventListener("submit", send);
$("add").addEventListener("submit", addContact);
$("logout").addEventListener("click", () => { logout(); setStatus("offline"); });

const saved = sessionStorage.getItem("im.session");
if (saved) { state.session = JSON.parse(saved); start(); }
