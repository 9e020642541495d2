/// GET /: one self-contained page (no external assets: it works offline) that polls the
/// JSON API every two seconds and shows the processes with their context-window meters,
/// the drivers and their health, the policy's rules and the audit log's tail.
///
/// The API key: `/#key=KEY` (a fragment, so it never reaches the server or its logs) or
/// the sign-in form; it is kept in sessionStorage (this tab only) and sent as
/// `Authorization: Bearer KEY`. Every value is put in the page as text, never as HTML.
enum Dashboard {
    static let page = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>llmos dashboard</title>
<style>
  :root { --bg: #0f1419; --panel: #171d24; --line: #26303b; --text: #d8dee6; --dim: #8a96a3;
          --ok: #3fb950; --warn: #d29922; --bad: #f85149; --accent: #58a6ff; }
  * { box-sizing: border-box; }
  [hidden] { display: none !important; }
  body { margin: 0; font: 13px/1.45 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; background: var(--bg); color: var(--text); }
  header { display: flex; align-items: baseline; gap: 16px; padding: 12px 20px; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 16px; margin: 0; color: var(--accent); }
  header .dim { color: var(--dim); }
  main { display: grid; grid-template-columns: 1fr 1fr; gap: 14px; padding: 14px 20px; }
  section { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; overflow: auto; }
  section.wide { grid-column: 1 / -1; }
  h2 { font-size: 13px; margin: 0 0 8px; text-transform: uppercase; letter-spacing: .06em; color: var(--dim); }
  table { width: 100%; border-collapse: collapse; }
  th, td { text-align: left; padding: 3px 8px 3px 0; border-bottom: 1px solid var(--line); vertical-align: top; white-space: nowrap; }
  td.wrap { white-space: normal; word-break: break-word; min-width: 160px; }
  h2 .dim { text-transform: none; letter-spacing: 0; }
  th { color: var(--dim); font-weight: normal; }
  .ok { color: var(--ok); } .warn { color: var(--warn); } .bad { color: var(--bad); }
  .meter { position: relative; width: 180px; height: 14px; background: #0b0f13; border: 1px solid var(--line); border-radius: 3px; display: inline-block; vertical-align: middle; }
  .meter > span { position: absolute; left: 0; top: 0; bottom: 0; background: var(--ok); border-radius: 2px; }
  .meter.high > span { background: var(--warn); } .meter.full > span { background: var(--bad); }
  .meter-label { margin-left: 8px; color: var(--dim); }
  .empty { color: var(--dim); font-style: italic; }
  #login { max-width: 420px; margin: 80px auto; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 20px; }
  #login input { width: 100%; padding: 6px; margin: 8px 0; background: #0b0f13; color: var(--text); border: 1px solid var(--line); border-radius: 4px; font: inherit; }
  #login button { padding: 6px 14px; background: var(--accent); border: 0; border-radius: 4px; color: #051018; font: inherit; cursor: pointer; }
  #error { color: var(--bad); padding: 0 20px; }
</style>
</head>
<body>
<header>
  <h1>llmos</h1>
  <span id="summary" class="dim">connecting…</span>
  <span id="updated" class="dim"></span>
</header>
<div id="error"></div>
<form id="login" hidden>
  <div>This llmos server needs its API key (the one given with <code>--api-key</code> or <code>LLMOS_API_KEY</code>).</div>
  <input id="key" type="password" autocomplete="off" placeholder="API key">
  <button type="submit">Sign in</button>
  <div class="dim">Kept in this tab only (sessionStorage).</div>
</form>
<main id="main" hidden>
  <section class="wide" id="processes-section">
    <h2>Processes</h2>
    <table id="processes"><thead><tr><th>PID</th><th>OWNER</th><th>STATE</th><th>DETAIL</th><th>CPU</th><th>TOOLS</th><th>STEPS</th><th>TOKENS IN/OUT</th><th>CONTEXT WINDOW</th></tr></thead><tbody></tbody></table>
  </section>
  <section id="drivers-section">
    <h2>Drivers</h2>
    <table id="drivers"><thead><tr><th>NAME</th><th>CLASS</th><th>VERSION</th><th>ISOLATION</th><th>HEALTH</th><th>CALLS</th><th>FAILURES</th></tr></thead><tbody></tbody></table>
  </section>
  <section id="grants-section">
    <h2>Capability grants</h2>
    <table id="grants"><thead><tr><th>ACTION</th><th>CAPABILITY</th><th>PATTERN</th><th>SCOPE</th><th>SOURCE</th></tr></thead><tbody></tbody></table>
  </section>
  <section class="wide" id="audit-section">
    <h2>Audit log <span id="audit-note" class="dim"></span></h2>
    <table id="audit"><thead><tr><th>#</th><th>TIME</th><th>WHO</th><th>CAPABILITY</th><th>RESOURCE</th><th>DECISION</th><th>OUTCOME</th><th>RULE</th></tr></thead><tbody></tbody></table>
  </section>
</main>
<script>
(function () {
  "use strict";
  var fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  if (fragment.get("key")) {
    sessionStorage.setItem("llmos-key", fragment.get("key"));
    history.replaceState(null, "", location.pathname + location.search);
  }
  function key() { return sessionStorage.getItem("llmos-key") || ""; }
  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function row(cells) {
    var tr = document.createElement("tr");
    cells.forEach(function (cell) {
      if (cell instanceof Node) { var td = document.createElement("td"); td.appendChild(cell); tr.appendChild(td); }
      else tr.appendChild(el("td", cell));
    });
    return tr;
  }
  function fill(id, rows, empty, columns) {
    var body = document.querySelector("#" + id + " tbody");
    body.replaceChildren();
    if (rows.length === 0) {
      var td = el("td", empty, "empty"); td.colSpan = columns;
      var tr = document.createElement("tr"); tr.appendChild(td); body.appendChild(tr);
    }
    rows.forEach(function (r) { body.appendChild(r); });
  }
  function api(path) {
    var headers = {};
    if (key()) headers["Authorization"] = "Bearer " + key();
    return fetch(path, { headers: headers, cache: "no-store" }).then(function (response) {
      if (response.status === 401) { var e = new Error("unauthorized"); e.unauthorized = true; throw e; }
      return response.json().then(function (body) {
        if (!response.ok) throw new Error(path + ": " + ((body.error && body.error.message) || response.status));
        return body;
      });
    });
  }
  function meter(context) {
    var wrap = document.createElement("span");
    if (!context) { wrap.appendChild(el("span", "no request yet", "empty")); return wrap; }
    var fraction = context.context_length > 0 ? context.used_tokens / context.context_length : 0;
    var bar = el("span", null, "meter" + (fraction >= 0.9 ? " full" : fraction >= 0.7 ? " high" : ""));
    bar.setAttribute("role", "meter");
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", String(context.context_length));
    bar.setAttribute("aria-valuenow", String(context.used_tokens));
    bar.dataset.used = context.used_tokens;
    bar.dataset.window = context.context_length;
    var fill = document.createElement("span");
    fill.style.width = Math.min(100, Math.round(fraction * 100)) + "%";
    bar.appendChild(fill);
    wrap.appendChild(bar);
    wrap.appendChild(el("span", context.used_tokens + " / " + context.context_length + " tokens (" + Math.round(fraction * 100) + "%)"
      + (context.counted ? "" : " est.") + (context.dropped_messages ? " · " + context.dropped_messages + " left out" : ""), "meter-label"));
    return wrap;
  }
  function stateClass(state) {
    return state === "running" || state === "waiting" ? "warn" : state === "finished" ? "" : "ok";
  }
  function refresh() {
    return Promise.all([api("/api/status"), api("/api/processes"), api("/api/drivers"), api("/api/grants"), api("/api/audit?limit=30")])
      .then(function (all) {
        var status = all[0], processes = all[1].processes, drivers = all[2].drivers, grants = all[3].rules, audit = all[4];
        document.getElementById("login").hidden = true;
        document.getElementById("main").hidden = false;
        document.getElementById("error").textContent = "";
        document.getElementById("summary").textContent = "host " + status.host_pid + " · " + status.drivers + " drivers · "
          + status.processes + " processes (" + status.running + " running) · models: " + status.models.join(", ")
          + " · MCP: " + status.mcp.tools + " tools, " + status.mcp.sessions + " sessions";
        document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
        fill("processes", processes.map(function (p) {
          var tr = row([p.pid, p.owner, el("span", p.state, stateClass(p.state)), p.detail, p.cpu, p.tools.join(","), p.steps,
            p.input_tokens + "/" + p.output_tokens, meter(p.context)]);
          tr.dataset.pid = p.pid; tr.dataset.state = p.state;
          tr.children[3].className = "wrap";
          return tr;
        }), "no agent processes yet: POST /v1/chat/completions starts one", 9);
        fill("drivers", drivers.map(function (d) {
          var h = d.health.status;
          var tr = row([d.name, d.class, d.version, d.isolation, el("span", h, /^ok/.test(h) ? "ok" : "bad"), d.health.calls, d.health.failures]);
          tr.dataset.driver = d.name;
          return tr;
        }), "no drivers loaded", 7);
        fill("grants", grants.map(function (g) {
          var scope = (g.driver ? "driver:" + g.driver + " " : "") + (g.tool ? "tool:" + g.tool : "");
          var tr = row([el("span", g.action, g.action === "deny" ? "bad" : g.action === "allow" ? "ok" : "warn"), g.capability, g.pattern, scope || "any", g.source]);
          tr.children[2].className = "wrap";
          tr.children[4].className = "wrap";
          return tr;
        }), "no rules", 5);
        document.getElementById("audit-note").textContent = audit.enabled ? (audit.path ? "(" + audit.path + ")" : "") : "(off: --no-audit-log)";
        fill("audit", (audit.records || []).map(function (r) {
          var tr = row([r.sequence, r.time, r.driver || "operator", r.capability, r.resource,
            el("span", r.decision + (r.flagged ? " FLAGGED" : ""), r.decision === "deny" ? "bad" : r.decision === "allow" ? "ok" : "warn"), r.outcome, r.rule]);
          tr.children[7].className = "wrap";
          return tr;
        }), audit.enabled ? "nothing recorded yet" : "the audit log is off", 8);
        document.body.dataset.loaded = "true";
      })
      .catch(function (error) {
        if (error.unauthorized) {
          document.getElementById("main").hidden = true;
          document.getElementById("login").hidden = false;
          document.getElementById("summary").textContent = key() ? "the API key was refused" : "sign in";
          if (key()) sessionStorage.removeItem("llmos-key");
        } else {
          document.getElementById("error").textContent = String(error.message || error);
        }
      });
  }
  document.getElementById("login").addEventListener("submit", function (event) {
    event.preventDefault();
    sessionStorage.setItem("llmos-key", document.getElementById("key").value);
    refresh();
  });
  refresh();
  setInterval(refresh, 2000);
})();
</script>
</body>
</html>
"""#
}
