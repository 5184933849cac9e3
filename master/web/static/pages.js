// The commissioning pages of the manual's chapter 6: general information, installer
// settings, load balancing, authorisation, smart charging, CSMS. The charger's settings
// come from /api/charger/settings as a list of keys (their page, label, unit, range or
// choices and value); a page shows its keys and sends only what was changed. A refusal
// is shown as the server words it (the same message as the io7.toml loader's).
"use strict";

function enumWord(v, prefix) {
  return String(v || "").replace(prefix, "").replace(/_/g, " ").toLowerCase();
}

// --- general information ----------------------------------------------------------------
function facts(obj) {
  const dl = el("dl", {class: "facts"});
  for (const [k, v] of Object.entries(obj)) {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      for (const [k2, v2] of Object.entries(v)) {
        dl.append(el("dt", {text: humanise(`${k} ${k2}`)}),
                  el("dd", {"data-key": `${k}.${k2}`, text: fmt(v2)}));
      }
    } else {
      dl.append(el("dt", {text: humanise(k)}), el("dd", {"data-key": k, text: fmt(v)}));
    }
  }
  return dl;
}

function fmt(v) {
  if (v === null || v === undefined || v === "") return "–";
  if (Array.isArray(v)) return v.map(fmt).join(", ");
  if (typeof v === "object") return JSON.stringify(v);
  if (typeof v === "boolean") return v ? "yes" : "no";
  return String(v);
}

io7.pages.info = async (main) => {
  const info = await api("GET", "/api/charger");
  main.append(el("section", {class: "card", id: "info"},
    el("h1", {text: "General information"}), facts(info)));
};

// --- settings pages (installer, authorisation, smart charging, CSMS) --------------------
function settingsList(data) {
  if (Array.isArray(data)) return data;
  if (data && Array.isArray(data.settings)) return data.settings;
  return [];
}

function inputFor(s) {
  const id = `set-${s.key.replace(/[^a-z0-9]+/gi, "-")}`;
  const value = s.value;
  const lo = s.min ?? s.lo ?? null;
  const hi = s.max ?? s.hi ?? null;
  let input;
  if (Array.isArray(value) && s.choices && s.choices.length) {
    // e.g. a connector's wiring: one select per line
    input = el("span", {class: "multi", id, "data-key": s.key});
    value.forEach((v, i) => {
      const sel = el("select", {"data-index": i, "aria-label": `${s.label} L${i + 1}`},
        ...s.choices.map((c) => el("option", {value: c, text: c})));
      sel.value = v;
      input.append(sel);
    });
    input.read = () => [...input.querySelectorAll("select")].map((x) => x.value);
  } else if (s.choices && s.choices.length) {
    const known = s.choices.some((c) => JSON.stringify(c) === JSON.stringify(value));
    const choices = known ? s.choices : [value, ...s.choices];  // e.g. null: not set
    input = el("select", {id, "data-key": s.key},
      ...choices.map((c) => el("option", {value: JSON.stringify(c),
                                          text: c === null ? "not set" : fmt(c)})));
    input.value = JSON.stringify(value);
    input.read = () => JSON.parse(input.value);
  } else if (typeof value === "number" || s.unit || lo !== null) {
    input = el("input", {id, "data-key": s.key, type: "number", step: "any",
                         min: lo ?? undefined, max: hi ?? undefined});
    input.value = value ?? "";
    input.read = () => (input.value === "" ? null : Number(input.value));
  } else if (typeof value === "boolean") {
    input = el("input", {id, "data-key": s.key, type: "checkbox"});
    input.checked = value;
    input.read = () => input.checked;
  } else {
    input = el("input", {id, "data-key": s.key, type: s.secret ? "password" : "text"});
    input.value = value ?? "";
    input.read = () => input.value;
  }
  input.initial = JSON.stringify(input.read());
  const range = lo !== null ? ` [${lo}-${hi}${s.unit ? " " + s.unit : ""}]`
    : s.unit ? ` [${s.unit}]` : "";
  const note = s.live ? "(applies at once)" : s.restart_why || "(applies at the next restart)";
  return el("label", {class: typeof value === "boolean" ? "check" : ""},
    `${s.label}${range}`, input, note ? el("span", {class: "hint", text: ` ${note}`}) : null);
}

async function settingsPage(main, page, title, extra) {
  const data = await api("GET", "/api/charger/settings");
  const mine = settingsList(data).filter((s) => s.page === page);
  // novalidate: the io7.toml loader's own message (key and allowed range) is the refusal,
  // not the browser's
  const form = el("form", {id: `${page}-form`, novalidate: true});
  const inputs = [];
  for (const s of mine) {
    const label = inputFor(s);
    inputs.push(label.querySelector("[data-key]"));
    form.append(label);
  }
  const result = el("p", {id: "settings-result", role: "status"});
  const canChange = io7.me && io7.me.role === "installer";
  form.append(el("button", {type: "submit", id: "settings-save", disabled: !canChange,
                            text: "Save"}), result);
  if (!canChange) form.append(el("p", {class: "hint", text: "Log in as installer to change these."}));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const changes = {};
    for (const input of inputs) {
      const now = input.read();
      if (JSON.stringify(now) !== input.initial) changes[input.dataset.key] = now;
    }
    if (!Object.keys(changes).length) { say(result, "Nothing changed.", true); return; }
    try {
      const resp = await api("PUT", "/api/charger/settings", {changes});
      for (const input of inputs) input.initial = JSON.stringify(input.read());
      const restart = resp && resp.restart_needed;
      say(result, restart ? `Saved. Restart needed: ${restartWords(resp)}`
                          : "Saved and applied.", true);
      if (restart) result.classList.add("restart");
    } catch (err) {
      say(result, err.message, false);
    }
  });
  const card = el("section", {class: "card", id: `page-${page}`}, el("h1", {text: title}), form);
  main.append(card);
  if (extra) await extra(main, data);
}

function restartWords(resp) {
  if (resp.restart_reasons) return Object.entries(resp.restart_reasons).map(([k, v]) => `${k}: ${v}`).join("; ");
  if (resp.restart_reason) return resp.restart_reason;
  if (Array.isArray(resp.restart)) return resp.restart.join("; ");
  if (resp.restart && typeof resp.restart === "object") {
    return Object.entries(resp.restart).map(([k, v]) => `${k}: ${v}`).join("; ");
  }
  return "restart io7d to apply it";
}

io7.pages.settings = (main) => settingsPage(main, "installer", "Installer settings");
io7.pages.smart = (main) => settingsPage(main, "smart_charging", "Smart charging (UK default profile)");
io7.pages.csms = (main) => settingsPage(main, "csms", "CSMS connection", async (m) => {
  const link = await api("GET", "/api/charger/csms");
  m.append(el("section", {class: "card", id: "csms-state"}, el("h2", {text: "Connection"}),
              facts(link)));
});

// --- authorisation: mode, and the local RFID list ---------------------------------------
io7.pages.authorisation = (main) => settingsPage(main, "authorisation", "Authorisation",
                                                  rfidCard);

async function rfidCard(main) {
  const list = el("tbody", {id: "rfid-list"});
  const owner = el("p", {class: "hint", id: "rfid-owner"});
  const result = el("p", {id: "rfid-result", role: "status"});
  const installer = io7.me && io7.me.role === "installer";
  const show = async () => {
    const got = await api("GET", "/api/charger/rfid");
    const tags = Array.isArray(got) ? got : got.tags || [];
    owner.textContent = {
      config: "These tags are the charger's local list.",
      csms: "The back office sent its own local list: these tags are kept but not used.",
      off: "OCPP is off: these tags wait for it.",
    }[got.owner] || "";
    list.replaceChildren(...tags.map((t) => {
      const tag = typeof t === "string" ? t : t.id_tag || t.tag || t.id;
      const rest = typeof t === "string" ? "" : Object.entries(t)
        .filter(([k]) => !["id_tag", "tag", "id"].includes(k)).map(([k, v]) => `${k}: ${fmt(v)}`).join(", ");
      return el("tr", {"data-tag": tag}, el("td", {text: tag}), el("td", {text: rest}),
        el("td", {}, el("button", {type: "button", class: "secondary", disabled: !installer,
          text: "Remove", onclick: async () => {
            try {
              await api("DELETE", `/api/charger/rfid/${encodeURIComponent(tag)}`);
              say(result, `Removed ${tag}.`, true);
              await show();
            } catch (err) { say(result, err.message, false); }
          }})));
    }));
  };
  const add = el("form", {id: "rfid-add"},
    el("label", {}, "RFID tag (id tag)", el("input", {name: "tag", id: "rfid-tag", required: true})),
    el("button", {type: "submit", disabled: !installer, text: "Add"}));
  add.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", "/api/charger/rfid", {id_tag: add.tag.value.trim()});
      say(result, `Added ${add.tag.value.trim()}.`, true);
      add.reset();
      await show();
    } catch (err) { say(result, err.message, false); }
  });
  const file = el("input", {type: "file", id: "rfid-file", accept: ".csv,text/csv"});
  const importForm = el("form", {id: "rfid-import"},
    el("label", {}, "Import a CSV file (one tag per line)", file),
    el("button", {type: "submit", disabled: !installer, text: "Import"}));
  importForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!file.files.length) return;
    try {
      const text = await file.files[0].text();
      const resp = await api("POST", "/api/charger/rfid/import", {csv: text});
      say(result, `Imported ${resp.added} tag(s), skipped ${resp.skipped} already listed.`, true);
      await show();
    } catch (err) { say(result, err.message, false); }
  });
  main.append(el("section", {class: "card", id: "rfid"}, el("h2", {text: "Local RFID list"}), owner,
    el("table", {}, el("thead", {}, el("tr", {}, el("th", {text: "tag"}), el("th", {text: ""}),
                                     el("th", {text: ""}))), list),
    add, importForm, result));
  await show();
}

// --- load balancing: the group (served by the leading member) ---------------------------
io7.pages.balancing = async (main) => {
  const [group, election] = await Promise.all([api("GET", "/api/group"),
                                               api("GET", "/api/election")]);
  const installer = io7.me && io7.me.role === "installer";
  const phases = group.phases || [];
  const configured = phases.length ? Math.max(...phases.map((p) => p.configured_limit_a || p.limit_a)) : 0;
  const summary = el("dl", {class: "facts", id: "group-facts"},
    el("dt", {text: "Group"}), el("dd", {text: group.group}),
    el("dt", {text: "Mode"}), el("dd", {"data-key": "mode", text: enumWord(group.mode, "LOAD_BALANCING_MODE_")}),
    el("dt", {text: "Total Group Limit (per phase)"}),
    el("dd", {"data-key": "limit", text: phases.map((p) => `${enumWord(p.phase, "PHASE_").toUpperCase()} ${amps(p.limit_a)}${p.limited_by ? ` (${p.limited_by})` : ""}`).join(", ")}),
    el("dt", {text: "Offline-charger strategy"}),
    el("dd", {"data-key": "offline_strategy", text: enumWord(group.offline_strategy, "OFFLINE_STRATEGY_")}),
    el("dt", {text: "Master"}), el("dd", {text: `${group.master_id} (term ${group.term})`}),
    el("dt", {text: "CT kit"}), el("dd", {text: enumWord(group.ct_status, "CT_STATUS_") + (group.ct_fault ? `: ${group.ct_fault}` : "")}));

  const limitResult = el("p", {id: "limit-result", role: "status"});
  const limitForm = el("form", {id: "limit-form"},
    el("label", {}, "Total Group Limit per phase [A] (never above the installed limit)",
       el("input", {id: "group-limit", name: "limit", type: "number", step: "0.1", min: 0,
                    value: configured})),
    el("button", {type: "submit", disabled: !installer, text: "Set limit"}), limitResult);
  limitForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const r = await api("PUT", "/api/group/limit", {limit_a: Number(limitForm.limit.value)});
      say(limitResult, `Limit ${amps(r.limit_a)} per phase (was ${amps(r.previous_limit_a)}; installed ${amps(r.installed_limit_a)}).`, true);
    } catch (err) { say(limitResult, err.message, false); }
  });

  const members = el("tbody", {id: "members"});
  for (const m of group.members || []) {
    const online = !!m.online;
    members.append(el("tr", {"data-member": m.charger_id},
      el("td", {}, online ? null : el("input", {type: "checkbox", name: "removed",
                                                value: m.charger_id, "aria-label": `${m.charger_id} was removed`})),
      el("td", {text: m.charger_id}),
      el("td", {class: online ? "" : "offline", text: online ? "online" : "offline"}),
      el("td", {text: m.offline_reason || m.address || ""})));
  }
  const rebuildResult = el("p", {id: "rebuild-result", role: "status"});
  const rebuild = el("button", {type: "button", id: "rebuild", class: "danger", disabled: !installer,
                                text: "Rebuild the group"});
  rebuild.addEventListener("click", async () => {
    const removed = [...members.querySelectorAll("input[name=removed]:checked")].map((x) => x.value);
    try {
      const r = await api("POST", "/api/group/rebuild", {removed});
      const parts = [`Rebuilt: removed ${r.removed.length ? r.removed.join(", ") : "none"}`,
                     `kept ${r.kept.join(", ") || "none"}`];
      if (r.offline_kept.length) parts.push(`offline, keeping their reservation: ${r.offline_kept.join(", ")} (tick them once they are physically gone)`);
      if (r.refused_connected.length) parts.push(`refused (connected): ${r.refused_connected.join(", ")}`);
      say(rebuildResult, parts.join("; ") + ".", !r.refused_connected.length);
    } catch (err) { say(rebuildResult, err.message, false); }
  });
  main.append(
    el("section", {class: "card", id: "balancing"}, el("h1", {text: "Load balancing"}), summary,
       limitForm),
    el("section", {class: "card"}, el("h2", {text: `Members (election term ${election.term})`}),
       el("table", {}, el("thead", {}, el("tr", {},
         ...["removed?", "charger", "link", ""].map((h) => el("th", {text: h})))), members),
       el("p", {class: "hint", text: "The group cannot tell an offline charger from a " +
         "removed one (manual 6.4.2): tick the chargers you physically removed, then " +
         "rebuild. An offline charger you do not tick keeps its fail-safe reservation."}),
       rebuild, rebuildResult));
};
