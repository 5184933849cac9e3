// The Passwords page: the logged-in account changes its own password (the current one
// is needed), and the installer sets the viewer's (no current one). The rules a new
// password must meet are the API's: its refusal is shown as it words it. A new password
// ends that account's sessions, so one's own change returns to the login form.
"use strict";

function passwordCard(id, title, account, own) {
  const result = el("p", {id: `${id}-result`, role: "status"});
  const box = (name, autocomplete) => el("input", {id: `${id}-${name}`, name,
                                                   type: "password", autocomplete});
  const current = own ? box("current", "current-password") : null;
  const password = box("password", "new-password");
  const repeat = box("repeat", "new-password");
  // novalidate: the API's message is the refusal, not the browser's
  const form = el("form", {id: `${id}-form`, novalidate: true},
    own ? el("label", {}, "Current password", current) : null,
    el("label", {}, "New password", password),
    el("label", {}, "Repeat the new password", repeat),
    el("button", {type: "submit", id: `${id}-save`, text: "Set password"}), result);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (password.value !== repeat.value) {
      say(result, "The two new passwords differ: type the same one twice.", false);
      return;
    }
    const body = {user: account, password: password.value};
    if (own) body.current = current.value;
    try {
      await api("PUT", "/api/password", body);
    } catch (err) {
      say(result, err.message, false);
      return;
    } finally {
      form.reset();
    }
    if (own) {
      sessionEnded("Your password is changed and your sessions ended: log in with the new one.");
    } else {
      say(result, `The ${account}'s password is set; its open sessions ended.`, true);
    }
  });
  const hint = own ? "Changing it ends your open sessions: you log in again with the new one."
    : "The viewer sees the pages but changes nothing. Setting its password ends its open " +
      "sessions; it needs no current password.";
  return el("section", {class: "card", id}, el("h2", {text: title}),
            el("p", {class: "hint", text: hint}), form);
}

io7.pages.passwords = async (main) => {
  const me = io7.me;
  main.append(el("h1", {text: "Passwords"}),
              passwordCard("own-password", `Your password (${me.user})`, me.user, true));
  if (me.role === "installer") {
    main.append(passwordCard("viewer-password", "The viewer's password", "viewer", false));
  }
};
