// The io7 web UI's core: the REST client, the hash router, login and small DOM helpers.
// No build step and no framework: every page is a function that fills <main>.
// Text from the charger is always set with textContent, never parsed as HTML.
"use strict";

const io7 = {
  pages: {},      // name -> async function (main element) filling the page
  stoppers: [],   // what the current page must close when the user leaves it (SSE)
  me: null,       // {user, role, charger_id} once logged in
  loginNotice: "",  // why the login form is shown again (a session that ended)
};

const SESSION_ENDED = "Your session ended (logged out elsewhere, a new password, or idle " +
  "too long): log in again.";

class ApiError extends Error {
  constructor(status, message, detail) {
    super(message);
    this.status = status;
    this.detail = detail;
  }
}

// The words of a refusal: FastAPI's {"detail": "..."} or {"detail": {"problem": ...}},
// or a validation error's list of {loc, msg}.
function problemText(detail) {
  if (detail == null) return "";
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => {
      const where = (d.loc || []).filter((p) => p !== "body").join(".");
      return where ? `${where}: ${d.msg}` : d.msg;
    }).join("; ");
  }
  if (typeof detail === "object") {
    return detail.problem || detail.message || detail.msg || JSON.stringify(detail);
  }
  return String(detail);
}

async function api(method, path, body) {
  const init = {method, credentials: "same-origin", headers: {}};
  if (body && typeof body === "object" && typeof body.csv === "string") {
    init.headers["Content-Type"] = "text/csv";  // an RFID list file, sent as it is
    init.body = body.csv;
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  let data = null;
  const type = resp.headers.get("content-type") || "";
  if (type.includes("json")) data = await resp.json();
  else data = await resp.text();
  if (resp.ok) return data;
  const detail = data && typeof data === "object" && "detail" in data ? data.detail : data;
  if (resp.status === 401 && path !== "/api/login") sessionEnded();
  throw new ApiError(resp.status, problemText(detail) || `${resp.status} ${resp.statusText}`,
                     detail);
}

// --- DOM helpers ---------------------------------------------------------------------
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function amps(v) {
  return v === null || v === undefined ? "–" : `${Number(v).toFixed(1)} A`;
}

function humanise(key) {
  const units = {_a: " [A]", _s: " [s]", _w: " [W]", _wh: " [Wh]", _ms: " [ms]"};
  let unit = "";
  for (const [suffix, label] of Object.entries(units)) {
    if (key.endsWith(suffix)) { key = key.slice(0, -suffix.length); unit = label; break; }
  }
  const words = key.replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1) + unit;
}

function banner(text, kind) {
  const b = document.getElementById("banner");
  b.replaceChildren();
  if (!text) { b.hidden = true; return; }
  b.className = `banner ${kind || "error"}`;
  if (text instanceof Node) b.append(text); else b.textContent = text;
  b.hidden = false;
}

// "The group pages are on io7-01" with a link, from a 409's detail or an SSE event.
function leaderNotice(detail) {
  const box = el("div", {class: "card notice", id: "not-leader"});
  const leader = detail && detail.leader;
  if (!leader) {
    box.append(el("p", {text: "No charger leads the group right now (an election is " +
                                "under way): this page retries by itself."}));
    return box;
  }
  const p = el("p", {}, `This charger does not lead its group. The group pages are on ${leader}`);
  if (detail.url) {
    p.append(": ", el("a", {href: `${detail.url}/#/live`, id: "leader-link",
                            text: detail.url}));
  }
  box.append(p);
  return box;
}

// A form's error line, and a success line that fades.
function say(node, text, ok) {
  node.textContent = text;
  node.className = ok ? "ok" : "error";
}

// Back to the login form: a 401 anywhere (logout elsewhere, a new password, idle expiry)
// or one's own new password. A session that was open says why; a first visit does not.
function sessionEnded(why) {
  if (io7.me) io7.loginNotice = why || SESSION_ENDED;
  io7.me = null;
  showWho();
  if (location.hash !== "#/login") go("login");  // once, however many calls failed
}

// --- routing ---------------------------------------------------------------------------
function go(page) {
  if (location.hash !== `#/${page}`) location.hash = `#/${page}`;
  else route();
}

async function route() {
  for (const stop of io7.stoppers.splice(0)) stop();
  const page = (location.hash.replace(/^#\//, "") || "live").split("?")[0];
  const main = document.getElementById("main");
  main.replaceChildren();
  banner("");
  document.querySelectorAll("#nav a").forEach((a) => {
    a.classList.toggle("active", a.dataset.page === page);
  });
  if (page !== "login" && !io7.me) {
    try {
      io7.me = await api("GET", "/api/me");
    } catch (err) {
      return;  // a 401 has sent us to the login page
    }
  }
  showWho();
  const fill = io7.pages[page] || io7.pages.live;
  main.dataset.page = page;
  try {
    await fill(main);
  } catch (err) {
    if (err instanceof ApiError && err.status === 409) {
      main.replaceChildren(leaderNotice(err.detail));
    } else if (!(err instanceof ApiError && err.status === 401)) {
      banner(err.message);
    }
  }
}

function showWho() {
  const who = document.getElementById("who");
  const out = document.getElementById("logout");
  const cid = document.getElementById("charger-id");
  if (io7.me) {
    who.textContent = `${io7.me.user} (${io7.me.role})`;
    cid.textContent = io7.me.charger_id;
    document.title = `io7 ${io7.me.charger_id}`;
    out.hidden = false;
  } else {
    who.textContent = "";
    out.hidden = true;
  }
}

io7.pages.login = async (main) => {
  main.append(document.getElementById("login-page").content.cloneNode(true));
  document.getElementById("login-notice").textContent = io7.loginNotice;
  const form = document.getElementById("login-form");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const error = document.getElementById("login-error");
    error.textContent = "";
    try {
      await api("POST", "/api/login", {user: form.user.value, password: form.password.value});
      io7.me = await api("GET", "/api/me");
      io7.loginNotice = "";
      go("live");
    } catch (err) {
      form.password.value = "";
      say(error, err.message, false);
    }
  });
  document.getElementById("login-password").focus();
};

document.getElementById("logout").addEventListener("click", async () => {
  try { await api("POST", "/api/logout"); } catch (err) { /* gone already */ }
  io7.me = null;
  io7.loginNotice = "";
  showWho();
  go("login");
});

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);
