/* New analysis: upload (with progress), confirm the column mapping, set options, follow the run.
   Every call is the public API: POST /api/v1/datasets, POST /api/v1/runs, GET /api/v1/runs/{id}.
   Errors show the API's message as it is. */
"use strict";

(() => {
  const { api, showError, hideError, el, setProgress, fmt } = window.SIS;
  const $ = (id) => document.getElementById(id);
  const ROLES = JSON.parse($("roles-data").textContent);
  const STAGES = [...document.querySelectorAll("#stages li")].map((li) => li.dataset.stage);
  const state = { file: null, dataset: null };

  const count = (n, word) => `${fmt.integer(n)} ${word}${n === 1 ? "" : "s"}`;
  const slug = (name) => name.trim().toLowerCase().replace(/[^0-9a-z]+/g, "_").replace(/^_+|_+$/g, "") || "x";

  function step(name) {
    const order = ["upload", "mapping", "run"];
    for (const li of document.querySelectorAll(".steps li")) {
      const i = order.indexOf(li.dataset.step), current = order.indexOf(name);
      li.classList.toggle("current", i === current);
      li.classList.toggle("done", i < current);
    }
  }

  // 1. Upload ------------------------------------------------------------------------------
  const dropzone = $("dropzone"), input = $("file-input");
  input.addEventListener("change", () => { if (input.files.length) upload(input.files[0]); });
  for (const type of ["dragenter", "dragover"]) {
    dropzone.addEventListener(type, (e) => { e.preventDefault(); dropzone.classList.add("over"); });
  }
  for (const type of ["dragleave", "drop"]) {
    dropzone.addEventListener(type, (e) => { e.preventDefault(); dropzone.classList.remove("over"); });
  }
  dropzone.addEventListener("drop", (e) => {
    if (e.dataTransfer && e.dataTransfer.files.length) upload(e.dataTransfer.files[0]);
  });

  function upload(file, shape) {
    state.file = file;
    hideError($("upload-error"));
    const box = $("upload-progress"), bar = box.querySelector(".progress");
    box.hidden = false;
    $("upload-name").textContent = file.name;
    $("upload-status").textContent = "Uploading…";
    setProgress(bar, 0);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/datasets" + (shape ? `?shape=${encodeURIComponent(shape)}` : ""));
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRF-Token", window.SIS.csrfToken());
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      const percent = Math.round((100 * e.loaded) / e.total);
      setProgress(bar, percent);
      $("upload-percent").textContent = `${percent}%`;
      if (percent === 100) $("upload-status").textContent = "Reading the file and detecting its columns…";
    });
    xhr.addEventListener("load", () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch (_) { data = null; }
      if (xhr.status >= 400 || !data) {
        const error = new Error((data && data.error && data.error.message) || `The upload failed (${xhr.status}).`);
        error.details = (data && data.error && data.error.details) || {};
        $("upload-status").textContent = "The file could not be used.";
        showError($("upload-error"), error);
        return;
      }
      $("upload-status").textContent = "Uploaded.";
      showDataset(data);
    });
    xhr.addEventListener("error", () => {
      showError($("upload-error"), new Error("The upload was interrupted (network error). Try again."));
    });
    xhr.send(form(file));
  }

  function form(file) { const data = new FormData(); data.append("file", file, file.name); return data; }

  // 2. Mapping and quality preview -----------------------------------------------------------
  // GET /api/v1/roles, embedded in the page: name, description, value type, required.
  function roleOptions(shape, column, current) {
    const options = [];
    for (const info of ROLES[shape]) {
      const role = info.family
        ? (current && current.startsWith(info.name.split(":")[0] + ":") ? current : `${info.name.split(":")[0]}:${slug(column)}`)
        : info.name;
      options.push({ role, title: info.description + (info.required ? " Required." : info.required_group ? ` Needed: ${info.required_group}.` : "") });
    }
    return options;
  }

  function showDataset(ds) {
    state.dataset = ds;
    const facts = $("dataset-facts");
    facts.replaceChildren(...[
      ["File", ds.filename], ["Format", ds.format + (ds.delimiter ? ` (“${ds.delimiter}”)` : "")],
      ["Rows", fmt.integer(ds.rows)], ["Columns", fmt.integer(ds.columns.length)],
    ].map(([k, v]) => el("div", {}, el("dt", { text: k }), el("dd", { text: v }))),
    el("div", {}, el("dt", {}, el("label", { for: "shape-select", text: "Layout" })),
      el("dd", {}, shapeSelect(ds.shape))));

    const mapped = ds.mapping.columns || {};
    const body = $("mapping-table").querySelector("tbody");
    body.replaceChildren(...ds.columns.map((column, i) => {
      const current = mapped[column] || "ignore";
      const select = el("select", { class: "role", id: `role-${i}`, "data-column": column,
        "aria-label": `Role of column ${column}` });
      for (const { role, title } of roleOptions(ds.shape, column, mapped[column])) {
        select.append(el("option", { value: role, title, text: role === "ignore" ? "ignore (not used)" : role,
          selected: role === current }));
      }
      const describe = () => { select.title = select.selectedOptions[0] ? select.selectedOptions[0].title : ""; };
      describe();
      select.addEventListener("change", () => {
        describe();
        select.closest("tr").classList.toggle("changed", select.value !== current);
        listUnmapped();
      });
      const examples = ds.preview.slice(0, 3).map((row) => row[column]).filter((v) => v !== null && v !== "");
      const missing = ds.missing_values[column] || 0;
      return el("tr", { "data-column": column },
        el("th", { scope: "row", text: column }),
        el("td", { class: "small muted examples", title: examples.join(", "), text: examples.join(", ") || "—" }),
        el("td", { class: "num" + (missing ? " strong" : ""), text: fmt.integer(missing) }),
        el("td", {}, select));
    }));
    listUnmapped();

    const checks = $("quality-preview");
    const missingCols = Object.entries(ds.missing_values).sort((a, b) => b[1] - a[1]);
    checks.replaceChildren(
      el("li", { text: `${count(ds.rows, "row")} and ${count(ds.columns.length, "column")} read.` }),
      missingCols.length
        ? el("li", { class: "warn", text: `Missing values in ${missingCols.length} column(s): ` +
            missingCols.slice(0, 6).map(([c, n]) => `${c} (${fmt.integer(n)})`).join(", ") +
            ". They will be filled or reported, never dropped silently." })
        : el("li", { text: "No missing values." }),
      ...ds.warnings.map((w) => el("li", { class: "warn", text: w.message })),
      ...ds.notes.map((n) => el("li", { class: "warn", text: n })));
    $("run-name").value = ds.filename;
    $("mapping-step").hidden = false;
    step("mapping");
    $("mapping-title").scrollIntoView({ behavior: "smooth", block: "start" });
  }

  function shapeSelect(shape) {
    const select = el("select", { id: "shape-select" },
      el("option", { value: "customers", text: "One row per customer", selected: shape === "customers" }),
      el("option", { value: "transactions", text: "One row per order", selected: shape === "transactions" }));
    select.addEventListener("change", () => upload(state.file, select.value));
    return select;
  }

  function currentMapping() {
    const columns = {};
    for (const select of document.querySelectorAll("#mapping-table select.role")) {
      if (select.value !== "ignore") columns[select.dataset.column] = select.value;
    }
    return { shape: state.dataset.shape, columns };
  }

  function listUnmapped() {
    const mapping = currentMapping();
    const unmapped = state.dataset.columns.filter((c) => !(c in mapping.columns));
    $("unmapped").textContent = unmapped.length
      ? `Not used (${unmapped.length}): ${unmapped.join(", ")}.` : "Every column is used.";
    const roles = ROLES[mapping.shape] || [];
    const groups = [...new Set(roles.filter((r) => r.required_group).map((r) => r.required_group))];
    $("required-roles").textContent = "Needed: " +
      [...roles.filter((r) => r.required).map((r) => r.name), ...groups].join("; ") + ".";
  }

  // Options and start --------------------------------------------------------------------------
  for (const radio of document.querySelectorAll('input[name="k_mode"]')) {
    radio.addEventListener("change", () => { $("k-input").disabled = radio.value !== "fixed" || !radio.checked; });
  }

  $("run-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    hideError($("run-error"));
    const button = $("start-button");
    const body = { dataset_id: state.dataset.id, mapping: currentMapping(), name: $("run-name").value || null };
    const seed = $("seed-input").value;
    if (seed !== "") body.seed = Number(seed);
    if (document.querySelector('input[name="k_mode"]:checked').value === "fixed") body.k = Number($("k-input").value);
    button.disabled = true;
    try {
      const run = await api("POST", "/api/v1/runs", body);
      $("run-step").hidden = false;
      step("run");
      $("run-title").scrollIntoView({ behavior: "smooth", block: "start" });
      follow(run.id);
    } catch (error) {
      showError($("run-error"), error);
      button.disabled = false;
    }
  });

  async function follow(runId) {
    const bar = $("run-step").querySelector(".progress");
    try {
      const run = await api("GET", `/api/v1/runs/${encodeURIComponent(runId)}`);
      setProgress(bar, run.progress);
      $("run-status").textContent = `${run.stage} · ${run.progress}%`;
      const at = STAGES.indexOf(run.stage);
      document.querySelectorAll("#stages li").forEach((li, i) => {
        li.classList.toggle("done", run.status === "succeeded" || (at >= 0 && i < at));
        li.classList.toggle("active", i === at && run.status === "running");
      });
      if (run.status === "succeeded") {
        $("run-status").textContent = "Done. Opening the results…";
        window.location.assign(`/runs/${encodeURIComponent(runId)}`);
        return;
      }
      if (run.status === "failed") {
        showError($("run-failed"), new Error(run.error ? run.error.message : "The analysis failed."));
        $("start-button").disabled = false;
        return;
      }
    } catch (_) { /* keep polling */ }
    setTimeout(() => follow(runId), 500);
  }
})();
