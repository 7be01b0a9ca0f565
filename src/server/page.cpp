// GET /: one self-contained page (no CDN, no external file) for people: chat with the model as a chosen user; each
// answer comes as two alternatives (POST /v1/users/{id}/elicit: the best guess for the user beside the alternative
// that teaches palign most); the pick goes to POST /v1/feedback, and the panel beside shows the user's weights with
// their uncertainty (mean ± sd bars) as they change.
#include "page.h"

namespace palign::server::detail {

std::string_view page_html() {
  return R"PAGE(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>palign</title>
<style>
  :root { --ink: #1d2330; --muted: #6b7280; --line: #d9dde5; --accent: #2f6fdf; --good: #1f9d6b; --bg: #f6f7fb; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: var(--bg); }
  header { display: flex; align-items: baseline; gap: 12px; padding: 14px 22px; background: #fff; border-bottom: 1px solid var(--line); }
  header h1 { margin: 0; font-size: 19px; }
  header span { color: var(--muted); font-size: 13px; }
  main { display: grid; grid-template-columns: minmax(0, 1fr) 320px; gap: 18px; padding: 18px 22px; max-width: 1200px; margin: 0 auto; }
  .card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px; }
  .controls { display: flex; flex-wrap: wrap; gap: 10px; align-items: end; margin-bottom: 12px; }
  label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); gap: 3px; }
  input, select, textarea, button { font: inherit; }
  input, select { padding: 6px 8px; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
  #log { min-height: 320px; max-height: 62vh; overflow-y: auto; display: flex; flex-direction: column; gap: 12px; padding: 4px 2px; }
  .turn-user { align-self: flex-end; background: var(--accent); color: #fff; padding: 8px 12px; border-radius: 12px 12px 2px 12px; max-width: 80%; white-space: pre-wrap; }
  .pair { display: grid; grid-template-columns: 1fr 1fr; gap: 10px; }
  .choice { border: 1px solid var(--line); border-radius: 10px; padding: 10px 12px; background: #fbfcff; display: flex; flex-direction: column; gap: 8px; }
  .choice .text { white-space: pre-wrap; }
  .choice button { align-self: flex-start; border: 1px solid var(--accent); color: var(--accent); background: #fff; border-radius: 6px; padding: 4px 10px; cursor: pointer; }
  .choice.chosen { border-color: var(--good); background: #eefaf4; }
  .choice.chosen button { border-color: var(--good); color: var(--good); }
  .choice.passed { opacity: .45; }
  .note { color: var(--muted); font-size: 12px; }
  form.send { display: flex; gap: 8px; margin-top: 12px; }
  form.send textarea { flex: 1; resize: vertical; min-height: 42px; padding: 8px 10px; border: 1px solid var(--line); border-radius: 8px; }
  form.send button { background: var(--accent); color: #fff; border: 0; border-radius: 8px; padding: 0 18px; cursor: pointer; }
  form.send button:disabled { opacity: .5; cursor: wait; }
  aside h2 { margin: 0 0 4px; font-size: 15px; }
  .weight { display: grid; grid-template-columns: 88px 1fr 92px; gap: 8px; align-items: center; margin: 10px 0; font-size: 13px; }
  .bar { position: relative; height: 16px; background: #eef0f5; border-radius: 4px; }
  .bar .zero { position: absolute; left: 50%; top: -3px; bottom: -3px; width: 1px; background: #9aa3b2; }
  .bar .sd { position: absolute; top: 6px; height: 4px; background: #b9c8ea; border-radius: 2px; }
  .bar .mean { position: absolute; top: 1px; width: 4px; height: 14px; margin-left: -2px; background: var(--accent); border-radius: 2px; transition: left .4s; }
  .num { font-variant-numeric: tabular-nums; text-align: right; color: var(--muted); }
  #error { color: #b42318; font-size: 13px; min-height: 18px; }
</style>
</head>
<body>
<header><h1>palign</h1><span id="model">personalized answers that learn from your choices</span></header>
<main>
  <section class="card">
    <div class="controls">
      <label>user <input id="user" value="guest" size="12"></label>
      <label>strategy
        <select id="strategy"><option value="">server default</option><option>sample</option><option>steer</option><option>best_of_n</option></select>
      </label>
      <label>API key (if the server asks) <input id="key" type="password" size="22" placeholder="pa-..."></label>
    </div>
    <div id="log" aria-live="polite"></div>
    <div id="error"></div>
    <form class="send" id="form">
      <textarea id="message" placeholder="Ask something; pick the answer you prefer"></textarea>
      <button id="send" type="submit">Send</button>
    </form>
  </section>
  <aside class="card">
    <h2>What palign knows about <span id="who">guest</span></h2>
    <div class="note" id="version">no feedback yet: answers use the population prior</div>
    <div id="weights"></div>
    <p class="note">Each bar: the weight palign puts on a dimension for this user (its posterior mean, the dark mark) and
      its uncertainty (one standard deviation either side, the light band). It moves with every choice.</p>
  </aside>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const keyInput = $("key");
keyInput.value = localStorage.getItem("palign-key") || "";
keyInput.addEventListener("change", () => localStorage.setItem("palign-key", keyInput.value));

async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (keyInput.value) headers["Authorization"] = "Bearer " + keyInput.value;
  const res = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error((data.error && data.error.message) || ("HTTP " + res.status));
    err.status = res.status;
    throw err;
  }
  return data;
}

function user() { return $("user").value.trim() || "guest"; }

function showWeights(u) {
  $("who").textContent = user();
  const panel = $("weights");
  panel.textContent = "";
  if (!u) {
    $("version").textContent = "no feedback yet: answers use the population prior";
    panel.dataset.version = "0";
    return;
  }
  $("version").textContent = "version " + u.version + " after " + u.events + " events";
  panel.dataset.version = String(u.version);
  const names = Object.keys(u.weights);
  const span = Math.max(1, ...names.map((n) => Math.abs(u.weights[n].mean) + u.weights[n].sd));
  const pos = (x) => (50 + 50 * x / span).toFixed(2) + "%";
  for (const name of names) {
    const w = u.weights[name];
    const row = document.createElement("div");
    row.className = "weight";
    row.dataset.name = name;
    row.dataset.mean = String(w.mean);
    row.dataset.sd = String(w.sd);
    row.innerHTML = '<span></span><div class="bar"><div class="zero"></div><div class="sd"></div><div class="mean"></div></div><span class="num"></span>';
    row.children[0].textContent = name;
    const bar = row.children[1];
    bar.querySelector(".sd").style.left = pos(w.mean - w.sd);
    bar.querySelector(".sd").style.width = (100 * w.sd / span).toFixed(2) + "%";
    bar.querySelector(".mean").style.left = pos(w.mean);
    row.children[2].textContent = (w.mean >= 0 ? "+" : "") + w.mean.toFixed(2) + " ± " + w.sd.toFixed(2);
    panel.appendChild(row);
  }
}

async function loadUser() {
  try {
    showWeights(await api("GET", "/v1/users/" + encodeURIComponent(user())));
    $("error").textContent = "";
  } catch (e) {
    if (e.status === 404) showWeights(null); else $("error").textContent = e.message;
  }
}

function addUserTurn(text) {
  const div = document.createElement("div");
  div.className = "turn-user";
  div.textContent = text;
  $("log").appendChild(div);
}

function addPair(elicited) {
  const pair = document.createElement("div");
  pair.className = "pair";
  pair.dataset.id = elicited.id;
  elicited.choices.forEach((text, index) => {
    const card = document.createElement("div");
    card.className = "choice";
    const body = document.createElement("div");
    body.className = "text";
    body.textContent = text;
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.index = String(index);
    button.textContent = index === 0 ? "I prefer this (palign's guess)" : "I prefer this";
    button.addEventListener("click", () => pick(pair, elicited.id, index));
    card.append(body, button);
    pair.appendChild(card);
  });
  const note = document.createElement("div");
  note.className = "note";
  note.textContent = "palign expected you to prefer the first with probability " + elicited.predicted.toFixed(2);
  $("log").append(pair, note);
  $("log").scrollTop = $("log").scrollHeight;
}

async function pick(pair, id, index) {
  if (pair.dataset.picked) return;
  pair.dataset.picked = String(index);
  [...pair.children].forEach((card, i) => card.classList.add(i === index ? "chosen" : "passed"));
  try {
    const u = await api("POST", "/v1/feedback", { user: user(), response_id: id, choice: index });
    showWeights(u);
    $("error").textContent = "";
  } catch (e) {
    $("error").textContent = e.message;
    delete pair.dataset.picked;
  }
}

$("form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const text = $("message").value.trim();
  if (!text) return;
  $("send").disabled = true;
  $("error").textContent = "";
  addUserTurn(text);
  $("message").value = "";
  const body = { prompt: text, candidates: 4, max_tokens: 48 };
  if ($("strategy").value) body.palign = { strategy: $("strategy").value };
  try {
    addPair(await api("POST", "/v1/users/" + encodeURIComponent(user()) + "/elicit", body));
  } catch (e) {
    $("error").textContent = e.message;
  } finally {
    $("send").disabled = false;
  }
});
$("user").addEventListener("change", loadUser);
fetch("/v1/models", { headers: keyInput.value ? { Authorization: "Bearer " + keyInput.value } : {} })
  .then((r) => r.json()).then((m) => { if (m.data) $("model").textContent = "model " + m.data[0].id; }).catch(() => {});
loadUser();
</script>
</body>
</html>
)PAGE";
}

}  // namespace palign::server::detail
