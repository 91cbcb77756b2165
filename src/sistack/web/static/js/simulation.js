/* Simulation: controls generated from the lever catalogue (GET /api/v1/levers, embedded in the
   page), results from POST /api/v1/runs/{id}/simulate as a control moves (debounced), saved
   scenarios, the budget optimiser and the campaign optimiser (POST /optimize with campaign).
   Every number shown is the server's, formatted. */
"use strict";

(() => {
  const { api, showError, hideError, fmt, debounce, el } = window.SIS;
  const $ = (id) => document.getElementById(id);
  const DATA = JSON.parse($("sim-data").textContent);
  const RUN = `/api/v1/runs/${encodeURIComponent(DATA.run_id)}`;
  const SEGMENTS = DATA.segments;
  const DEFAULT_LEVER = "price";
  const METRICS = ["revenue", "margin", "cost", "profit", "roi"];
  const BASELINE = DATA.baseline;  // GET /api/v1/runs/{id}/baseline, shown until a control moves
  const ratio = (v) => (v === null || v === undefined ? "—" : `${v.toFixed(2)}×`);
  const signedRatio = (v) => (v === null || v === undefined ? "—" : `${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(2)}×`);
  const show = (m, v) => (m === "roi" ? ratio(v) : fmt.money(v));
  const showDelta = (m, v) => (m === "roi" ? signedRatio(v) : fmt.signedMoney(v));
  const levers = {};
  let lastResult = null;

  // Controls ---------------------------------------------------------------------------------
  const variants = (p) => (p.anyOf ? p.anyOf.filter((o) => o.type !== "null") : [p]);
  const nullable = (p) => Boolean(p.anyOf && p.anyOf.some((o) => o.type === "null"));
  const isPercent = (name, s) => /share|shift|change|uplift|loss_rate|rate/.test(name) && s.maximum <= 1;
  const showParam = (name, s, v) => {
    if (!isPercent(name, s)) return s.type === "integer" ? String(v) : fmt.number(v, 2);
    return s.minimum < 0 ? fmt.signedPct(v) : fmt.pct(v, 0);
  };
  const segLabel = (seg) => [el("span", { class: "chip", style: `--seg: ${seg.color}`, "aria-hidden": "true" }),
    `${seg.id} · ${seg.name}`];

  function slider(id, name, schema, value, onInput) {
    const step = schema.type === "integer" ? 1 : (schema.maximum - schema.minimum <= 2 ? 0.01 : (schema.maximum - schema.minimum) / 100);
    const input = el("input", { type: "range", id, min: schema.minimum, max: schema.maximum, step, value });
    const out = el("output", { for: id, text: showParam(name, schema, Number(value)) });
    input.addEventListener("input", () => { out.textContent = showParam(name, schema, Number(input.value)); onInput(); });
    return { input, out, set(v) { input.value = v; out.textContent = showParam(name, schema, Number(input.value)); } };
  }

  function control(lever, name, p, changed) {
    const id = `${lever}-${name}`;
    const kinds = variants(p);
    const main = kinds[0];
    const wrap = el("div", { class: "param", "data-param": name });
    const hint = p.description ? el("p", { class: "hint", text: p.description }) : null;

    if (main.type === "object" && main.additionalProperties) {  // one value per segment (or channel)
      const schema = main.additionalProperties;
      const keys = name === "cost_to_serve" ? DATA.channels.map((c) => ({ key: c, label: [c] }))
        : SEGMENTS.map((s) => ({ key: String(s.id), label: segLabel(s) }));
      const optional = nullable(p) || !(p.minProperties);
      const items = keys.map(({ key, label }, i) => {
        const cid = `${id}-${key}`;
        if (optional) {
          const input = el("input", { type: "number", id: cid, min: schema.minimum, max: schema.maximum, step: "any", placeholder: "default" });
          input.addEventListener("input", changed);
          return { key, node: el("div", { class: "seg-slider" }, el("label", { for: cid }, ...label), input, el("span")),
            get: () => (input.value === "" ? undefined : Number(input.value)), set: (v) => { input.value = v ?? ""; } };
        }
        const s = slider(cid, name, schema, 0, changed);
        return { key, node: el("div", { class: "seg-slider" }, el("label", { for: cid }, ...label), s.input, s.out),
          get: () => Number(s.input.value), set: (v) => s.set(v ?? 0), first: i === 0 };
      });
      const head = el("p", { class: "param-label", text: p.title || name });
      const body = [head, hint, ...items.map((it) => it.node)];
      wrap.append(...(optional ? [el("details", {}, el("summary", { class: "small", text: `${p.title || name} (optional)` }), hint, ...items.map((it) => it.node))] : body));
      return { node: wrap, advanced: optional,
        get() {
          const out = {};
          for (const it of items) { const v = it.get(); if (v !== undefined && (optional || v !== 0)) out[it.key] = v; }
          if (!optional && !Object.keys(out).length) out[items[0].key] = 0;  // a valid, neutral value
          return optional && !Object.keys(out).length ? undefined : out;
        },
        set(value) { for (const it of items) it.set(value ? value[it.key] : undefined); } };
    }

    if (main.type === "array") {  // a set of segments; with an "all" alternative, none = all
      const all = kinds.some((k) => k.const === "all");
      const initial = name === "sources" ? [SEGMENTS[SEGMENTS.length - 1].id] : name === "targets" || name === "segments" && !all ? [SEGMENTS[0].id] : [];
      const boxes = SEGMENTS.map((s) => {
        const box = el("input", { type: "checkbox", id: `${id}-${s.id}`, value: s.id, checked: initial.includes(s.id) });
        box.addEventListener("change", changed);
        return { box, label: el("label", { for: `${id}-${s.id}` }, box, ...segLabel(s)) };
      });
      wrap.append(el("p", { class: "param-label", text: p.title || name }), hint,
        el("div", { class: "checks", role: "group", "aria-label": p.title || name }, ...boxes.map((b) => b.label)));
      return { node: wrap,
        get() { const ids = boxes.filter((b) => b.box.checked).map((b) => Number(b.box.value)); return ids.length ? ids : (all ? "all" : nullable(p) ? undefined : []); },
        set(value) { for (const b of boxes) b.box.checked = Array.isArray(value) && value.includes(Number(b.box.value)); } };
    }

    if (main.enum || (main.type === "string" && !main.const)) {  // a choice: enum, or a channel
      const options = main.enum || DATA.channels;
      const fallback = name === "to_channel" ? options[Math.min(1, options.length - 1)] : options[0];
      const value = p.default ?? fallback;
      const select = el("select", { id }, ...options.map((o) => el("option", { value: o, text: o, selected: o === value })));
      select.addEventListener("change", changed);
      wrap.append(el("label", { class: "param-label", for: id, text: p.title || name }), hint, select);
      return { node: wrap, get: () => select.value, set: (v) => { if (v !== undefined) select.value = v; } };
    }

    if (["number", "integer"].includes(main.type)) {
      if (nullable(p) || main.minimum === undefined || main.maximum === undefined) {  // blank = default
        const input = el("input", { type: "number", id, min: main.minimum, max: main.maximum, step: main.type === "integer" ? 1 : "any", placeholder: "default" });
        input.addEventListener("input", changed);
        wrap.append(el("label", { class: "param-label", for: id, text: p.title || name }), hint, input);
        return { node: wrap, advanced: true, get: () => (input.value === "" ? undefined : Number(input.value)), set: (v) => { input.value = v ?? ""; } };
      }
      const s = slider(id, name, main, p.default ?? main.minimum, changed);
      wrap.append(el("label", { class: "param-label", for: id, text: p.title || name }), hint,
        el("div", { class: "slider-row" }, s.input, s.out));
      return { node: wrap, get: () => Number(s.input.value), set: (v) => s.set(v ?? p.default ?? main.minimum) };
    }
    return null;
  }

  function buildLevers() {
    const root = $("levers");
    for (const lever of DATA.levers) {
      const on = el("input", { type: "checkbox", id: `lever-${lever.name}`, "data-lever": lever.name, checked: lever.name === DEFAULT_LEVER });
      const box = el("section", { class: "lever" + (on.checked ? " on" : ""), "data-lever": lever.name });
      const params = {}, basic = [], advanced = [];
      for (const [name, p] of Object.entries(lever.parameters.properties || {})) {
        const c = control(lever.name, name, p, schedule);
        if (!c) continue;
        params[name] = c;
        (c.advanced ? advanced : basic).push(c.node);
      }
      on.addEventListener("change", () => { box.classList.toggle("on", on.checked); schedule(); });
      box.append(
        el("label", { class: "lever-head", for: on.id }, on, el("span", {}, lever.title, el("span", { class: "lever-desc", text: lever.description }))),
        el("div", { class: "lever-body" }, ...basic, advanced.length ? el("details", { class: "more" }, el("summary", { class: "small", text: "More settings" }), ...advanced) : null));
      root.append(box);
      levers[lever.name] = { on, box, params };
    }
  }

  function scenario() {
    const list = [];
    for (const [name, lever] of Object.entries(levers)) {
      if (!lever.on.checked) continue;
      const params = {};
      for (const [key, c] of Object.entries(lever.params)) { const v = c.get(); if (v !== undefined) params[key] = v; }
      list.push({ lever: name, params });
    }
    const body = { levers: list };
    if ($("monte-carlo").checked) body.monte_carlo = { draws: DATA.mc_draws, seed: 0 };
    return body;
  }

  function applyScenario(body) {
    for (const [name, lever] of Object.entries(levers)) {
      const spec = body.levers.find((l) => l.lever === name);
      lever.on.checked = Boolean(spec);
      lever.box.classList.toggle("on", lever.on.checked);
      for (const [key, c] of Object.entries(lever.params)) c.set(spec ? spec.params[key] : undefined);
    }
    $("monte-carlo").checked = Boolean(body.monte_carlo);
    simulate();
  }

  // Results ----------------------------------------------------------------------------------
  let sequence = 0, inflight = null;
  const schedule = debounce(() => simulate(), 150);
  $("monte-carlo").addEventListener("change", () => simulate());

  async function simulate() {
    const body = scenario();
    const status = $("sim-status"), card = $("result-card");
    hideError($("sim-error"));
    if (!body.levers.length) { ++sequence; if (inflight) inflight.abort(); showBaseline(); return; }
    const mine = ++sequence;
    if (inflight) inflight.abort();
    inflight = new AbortController();
    card.setAttribute("aria-busy", "true");
    status.textContent = "Computing…";
    try {
      const result = await api("POST", `${RUN}/simulate`, body, { signal: inflight.signal });
      if (mine !== sequence) return;
      render(result, body);
      status.textContent = "Up to date";
    } catch (error) {
      if (error.name === "AbortError" || mine !== sequence) return;
      showError($("sim-error"), error);
      status.textContent = "";
    } finally {
      if (mine === sequence) card.setAttribute("aria-busy", "false");
    }
  }

  const signClass = (metric, v) => (!v ? "" : (metric === "cost" ? v < 0 : v > 0) ? "up" : "down");

  /** The run as it stands (no lever): what the server rendered, put back. */
  function showBaseline() {
    const o = BASELINE.overall;
    const card = $("result-card");
    lastResult = null;
    card.dataset.scenario = "baseline";
    card.setAttribute("aria-busy", "false");
    for (const m of METRICS) {
      const box = $(`metric-${m}`);
      const value = box.querySelector(".metric-value");
      value.textContent = show(m, o[m]);
      value.dataset.value = o[m] === null ? "" : String(o[m]);
      const delta = box.querySelector(".metric-delta");
      delta.textContent = "Baseline";
      delta.className = "metric-delta";
      box.querySelector(".metric-base").textContent = "No lever applied";
      box.querySelector(".metric-band").textContent = "\u00a0";
    }
    $("segment-results").classList.add("no-mc");
    for (const s of BASELINE.segments) {
      const row = document.querySelector(`#segment-results tr[data-segment="${s.segment}"]`);
      if (!row) continue;
      const cells = [fmt.signedMoney(0), "—", fmt.money(s.profit), fmt.signedMoney(0), fmt.signedMoney(0), fmt.signedMoney(0)];
      row.querySelectorAll("td").forEach((td, i) => {
        td.textContent = cells[i];
        td.className = "num" + (i === 0 ? " strong" : i === 1 ? " band" : "");
      });
      row.querySelector("td").dataset.value = "0";
    }
    $("warnings").replaceChildren();
    $("sim-status").textContent = "Baseline: move a control to try a decision";
  }

  function render(result, body) {
    lastResult = result;
    const o = result.overall;
    const card = $("result-card");
    card.dataset.scenario = JSON.stringify(body);
    for (const m of METRICS) {
      const box = $(`metric-${m}`);
      const value = box.querySelector(".metric-value");
      value.textContent = show(m, o.scenario[m]);
      value.dataset.value = o.scenario[m] === null ? "" : String(o.scenario[m]);
      const delta = box.querySelector(".metric-delta");
      delta.textContent = o.delta[m] === 0 ? "no change" : showDelta(m, o.delta[m]);
      delta.className = `metric-delta ${signClass(m, o.delta[m])}`;
      // marketing cost only: a channel shift's change in cost to serve is its own number
      const serving = m === "cost" && o.delta.serving_cost_change ? ` · cost to serve ${fmt.signedMoney(o.delta.serving_cost_change)}` : "";
      box.querySelector(".metric-base").textContent = `Baseline ${show(m, o.baseline[m])}${serving}`;
      const u = o.uncertainty && o.uncertainty.scenario[m];
      box.querySelector(".metric-band").textContent = u ? `P10 ${show(m, u.p10)} · P50 ${show(m, u.p50)} · P90 ${show(m, u.p90)}` : "\u00a0";
    }
    $("segment-results").classList.toggle("no-mc", !result.monte_carlo);
    for (const s of result.segments) {
      const row = document.querySelector(`#segment-results tr[data-segment="${s.segment}"]`);
      if (!row) continue;
      const u = s.uncertainty && s.uncertainty.delta.profit;
      const cells = [fmt.signedMoney(s.delta.profit), u ? `${fmt.signedMoney(u.p10)} – ${fmt.signedMoney(u.p90)}` : "—",
        fmt.money(s.scenario.profit), fmt.signedMoney(s.delta.revenue),
        fmt.signedMoney(s.delta.margin), fmt.signedMoney(s.delta.cost)];
      row.querySelectorAll("td").forEach((td, i) => {
        td.textContent = cells[i];
        td.className = "num" + (i === 0 ? ` strong ${signClass("profit", s.delta.profit)}` : i === 1 ? " band" : "");
      });
      row.querySelector("td").dataset.value = String(s.delta.profit);
    }
    $("warnings").replaceChildren(...result.warnings.map((w) => el("li", { text: w.message })));
    const e = result.assumptions.economics;
    $("assumptions").textContent = `Assumptions: margin rate ${fmt.pct(e.margin_rate, 0)} (${e.sources.margin_rate}), ` +
      `cost per contact ${fmt.number(e.cost_per_contact)} (${e.sources.cost_per_contact}), revenue per response ` +
      `${fmt.number(e.revenue_per_response)} (${e.sources.revenue_per_response}), current discount depth ` +
      `${fmt.pct(e.current_discount_depth, 0)} (${e.sources.current_discount_depth}).` +
      leverOverrides(result.assumptions.levers, e);
  }

  // A lever given its own contact cost or response value (a loaded campaign plan) says so
  // where it differs from the economics above, which are then not what that lever used.
  function leverOverrides(levers, economics) {
    const names = { cost_per_contact: "cost per contact", revenue_per_response: "revenue per response" };
    const parts = [];
    for (const l of levers || []) {
      const own = Object.keys(names).filter((k) => k in (l.params || {}) && !(k in (l.filled || {}))
        && l.params[k] !== economics[k]);
      if (own.length) {
        parts.push(` The ${l.lever} lever uses its own ` +
          own.map((k) => `${names[k]} ${fmt.number(l.params[k])}`).join(" and ") + ".");
      }
    }
    return parts.join("");
  }

  // Saved scenarios --------------------------------------------------------------------------
  async function loadList() {
    const list = $("scenario-list");
    try {
      const items = await api("GET", `${RUN}/scenarios`);
      if (!items.length) { list.replaceChildren(el("li", { class: "muted", text: "No saved scenarios yet." })); updateCompare(); return; }
      list.replaceChildren(...items.map((s) => {
        const box = el("input", { type: "checkbox", id: `pick-${s.id}`, value: s.id, "data-name": s.name });
        box.addEventListener("change", updateCompare);
        return el("li", { "data-scenario-id": s.id },
          el("label", { for: box.id }, box, s.name),
          el("button", { type: "button", class: "button small secondary", text: "Load", "aria-label": `Load ${s.name}`, onclick: () => applyScenario(s.scenario) }),
          el("button", { type: "button", class: "button small link", text: "Delete", "aria-label": `Delete ${s.name}`,
            onclick: async () => { await api("DELETE", `${RUN}/scenarios/${encodeURIComponent(s.id)}`); loadList(); } }));
      }));
    } catch (error) { showError($("scenario-error"), error); }
    updateCompare();
  }

  function updateCompare() {
    const n = document.querySelectorAll("#scenario-list input:checked").length;
    $("compare-button").disabled = n < 1 || n > 4;
    $("compare-button").textContent = n ? `Compare selected (${n})` : "Compare selected";
  }

  $("save-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    hideError($("scenario-error"));
    const name = $("scenario-name").value.trim();
    try {
      if (!name) throw new Error("Give the scenario a name.");
      await api("POST", `${RUN}/scenarios`, { name, scenario: scenario() });
      $("scenario-name").value = "";
      await loadList();
    } catch (error) { showError($("scenario-error"), error); }
  });

  $("compare-button").addEventListener("click", async () => {
    hideError($("scenario-error"));
    const ids = [...document.querySelectorAll("#scenario-list input:checked")].map((b) => b.value);
    try {
      const data = await api("POST", `${RUN}/scenarios/compare`, { scenario_ids: ids });
      const table = $("scenario-compare");
      const rows = [["Scenario revenue", (r) => r.overall.scenario.revenue, fmt.money],
        ["Δ revenue", (r) => r.overall.delta.revenue, fmt.signedMoney], ["Δ margin", (r) => r.overall.delta.margin, fmt.signedMoney],
        ["Δ cost", (r) => r.overall.delta.cost, fmt.signedMoney],
        ["Δ cost to serve", (r) => r.overall.delta.serving_cost_change, fmt.signedMoney], ["Scenario profit", (r) => r.overall.scenario.profit, fmt.money],
        ["Δ profit", (r) => r.overall.delta.profit, fmt.signedMoney]];
      table.replaceChildren(
        el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "" }), ...data.scenarios.map((s) => el("th", { scope: "col", class: "num", text: s.name })))),
        el("tbody", {}, ...rows.map(([label, pick, f]) => el("tr", {}, el("th", { scope: "row", text: label }),
          ...data.scenarios.map((s) => el("td", { class: "num", "data-value": String(pick(s.result)), text: f(pick(s.result)) }))))));
      table.hidden = false;
    } catch (error) { showError($("scenario-error"), error); }
  });

  // Optimiser --------------------------------------------------------------------------------
  $("optimize-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    hideError($("optimize-error"));
    const body = { total_budget: Number($("budget").value), objective: $("objective").value };
    try {
      const r = await api("POST", `${RUN}/optimize`, body);
      const interval = r.profit_interval;
      $("optimize-summary").replaceChildren(
        ...[["Expected profit, recommended", fmt.money(r.expected_profit)], ["Expected profit, current split", fmt.money(r.current_expected_profit)],
          ["Improvement", fmt.signedMoney(r.improvement)], ["Recommended P10 – P90", `${fmt.money(interval.p10)} – ${fmt.money(interval.p90)}`]]
          .map(([k, v]) => el("div", {}, el("dt", { text: k }), el("dd", { text: v }))));
      const byId = Object.fromEntries(SEGMENTS.map((s) => [s.id, s]));
      $("allocation").querySelector("tbody").replaceChildren(...r.segments.map((s) => el("tr", { "data-segment": s.segment },
        el("th", { scope: "row" }, ...segLabel(byId[s.segment] || { id: s.segment, name: "", color: "#999" })),
        el("td", { class: "num", text: fmt.money(s.current_budget) }), el("td", { class: "num strong", text: fmt.money(s.budget) }),
        el("td", { class: "num", text: fmt.number(s.responders, 1) }), el("td", { class: "num", text: fmt.money(s.revenue) }))));
      $("optimize-result").hidden = false;
      for (const w of r.warnings || []) showError($("optimize-error"), new Error(w.message || String(w)));
    } catch (error) { showError($("optimize-error"), error); }
  });

  // Campaign optimiser ----------------------------------------------------------------------
  // A segment's rule goes to the request's "always" or "never" list (OptimizationRequest).
  const CONTACT_RULES = { must: "always", never: "never" };
  const RULE_NOTE = { always: " (always)", never: " (never)" };
  let lastCampaign = null;

  // The quantile field is used only by the quantile objective (also as a browser restores it).
  const syncQuantile = () => {
    $("campaign-quantile").disabled = $("campaign-objective").value !== "quantile";
  };
  $("campaign-objective").addEventListener("change", syncQuantile);
  syncQuantile();

  /** The request the form describes; blank fields are left to the API's defaults. */
  function campaignRequest() {
    const number = (id, label) => {
      const input = $(id);
      if (input.validity.badInput) throw new Error(`${label} is not a number.`);
      return input.value === "" ? undefined : Number(input.value);
    };
    const body = { campaign: true, objective: $("campaign-objective").value };
    const cap = number("campaign-budget", "The cost cap");
    if (cap !== undefined) body.total_budget = cap;
    if (body.objective === "quantile") {
      const q = number("campaign-quantile", "The profit quantile");
      if (q !== undefined) body.quantile = q;
    }
    const economics = {};
    const cpc = number("campaign-cpc", "The cost per contact");
    const rpr = number("campaign-rpr", "The revenue per response");
    if (cpc !== undefined) economics.cost_per_contact = cpc;
    if (rpr !== undefined) economics.revenue_per_response = rpr;
    if (Object.keys(economics).length) body.economics = economics;
    for (const select of document.querySelectorAll("#campaign-form select[data-segment]")) {
      const list = CONTACT_RULES[select.value];
      if (list) (body[list] = body[list] || []).push(Number(select.dataset.segment));
    }
    return body;
  }

  function renderCampaign(r, body) {
    lastCampaign = r;
    const byId = Object.fromEntries(SEGMENTS.map((s) => [s.id, s]));
    const name = (id) => `${id} · ${(byId[id] || { name: "" }).name}`;
    const e = r.economics;
    const at = `a cost per contact of ${fmt.number(e.cost_per_contact)} and a revenue per response of ${fmt.number(e.revenue_per_response)}`;
    $("campaign-verdict").textContent = r.contacted.length
      ? `Contact ${r.contacted.map(name).join(", ")}: ${fmt.integer(r.customers_contacted)} customers, ` +
        `${fmt.number(r.expected_responders, 1)} expected responders, for ${fmt.money(r.spent)}.`
      : "Contact no segment: no set of segments within these limits does better than no campaign.";
    const interval = r.profit_interval;
    const rows = [
      ["Customers contacted", fmt.integer(r.customers_contacted)],
      ["Expected responders", fmt.number(r.expected_responders, 1)],
      ["Campaign cost", r.total_budget === null ? fmt.money(r.spent) : `${fmt.money(r.spent)} of ${fmt.money(r.total_budget)}`],
      ["Expected profit", fmt.money(r.expected_profit)],
      ["Profit P10 – P90", `${fmt.money(interval.p10)} – ${fmt.money(interval.p90)}`],
    ];
    if (r.objective === "quantile") rows.push([`Profit P${fmt.number(r.quantile * 100, 0)} (maximised)`, fmt.money(r.objective_value)]);
    rows.push(["Expected profit, contacting all", fmt.money(r.contact_all.expected_profit)], ["Expected gain over contacting all", fmt.signedMoney(r.improvement)]);
    $("campaign-summary").replaceChildren(...rows.map(([k, v]) => el("div", {}, el("dt", { text: k }), el("dd", { text: v }))));
    $("campaign-assumptions").textContent = `At ${at} (per segment below: the numbers if it is contacted).`;
    $("campaign-warnings").replaceChildren(...r.warnings.map((w) => el("li", { text: w.message })));
    $("campaign-segments").querySelector("tbody").replaceChildren(...r.segments.map((s) => el("tr", { "data-segment": s.segment, "data-contact": String(s.contact) },
      el("th", { scope: "row" }, ...segLabel(byId[s.segment] || { id: s.segment, name: "", color: "#999" })),
      el("td", { class: s.contact ? "strong" : "muted", text: (s.contact ? "Contact" : "Skip") + (RULE_NOTE[s.rule] || "") }),
      el("td", { class: "num", text: fmt.integer(s.contacts) }), el("td", { class: "num", text: fmt.money(s.cost) }),
      el("td", { class: "num", text: fmt.number(s.responders, 1) }),
      el("td", { class: `num ${s.profit > 0 ? "up" : s.profit < 0 ? "down" : ""}`, text: fmt.signedMoney(s.profit) }))));
    $("campaign-apply").disabled = !r.scenario;
    $("campaign-apply-status").textContent = r.scenario ? "" : "Nothing to load: the plan contacts no segment.";
    $("campaign-result").dataset.request = JSON.stringify(body);
    $("campaign-result").hidden = false;
  }

  $("campaign-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = event.submitter || $("campaign-form").querySelector("button[type=submit]");
    hideError($("campaign-error"));
    button.setAttribute("aria-busy", "true");
    try {
      const body = campaignRequest();
      renderCampaign(await api("POST", `${RUN}/optimize`, body), body);
    } catch (error) {
      $("campaign-result").hidden = true;  // no stale plan next to the error
      showError($("campaign-error"), error);
    } finally {
      button.setAttribute("aria-busy", "false");
    }
  });

  $("campaign-apply").addEventListener("click", () => {
    if (!lastCampaign || !lastCampaign.scenario) return;
    applyScenario(lastCampaign.scenario);
    $("scenario-name").value = `Campaign: contact segments ${lastCampaign.contacted.join(", ")}`;
    $("campaign-apply-status").textContent = "Loaded: the results above show this campaign; save it under Scenarios.";
    $("scenario-name").focus();
  });

  buildLevers();
  loadList();
  $("budget").value = String(BASELINE.overall.cost);
  showBaseline();
})();
