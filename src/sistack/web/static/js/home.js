/* Home: start the demo, and keep the progress of running analyses live. */
"use strict";

(() => {
  const { api, showError, setProgress } = window.SIS;
  const errorBox = document.getElementById("demo-error");

  for (const button of document.querySelectorAll("[data-demo]")) {
    button.addEventListener("click", async () => {
      button.setAttribute("aria-busy", "true");
      button.disabled = true;
      try {
        const run = await api("POST", "/api/v1/demo", {});
        window.location.assign(`/runs/${encodeURIComponent(run.id)}`);
      } catch (error) {
        showError(errorBox, error);
        button.disabled = false;
        button.removeAttribute("aria-busy");
      }
    });
  }

  const active = [...document.querySelectorAll('tr[data-status="queued"], tr[data-status="running"]')];
  if (!active.length) return;

  async function poll() {
    let finished = false;
    for (const row of active) {
      try {
        const run = await api("GET", `/api/v1/runs/${encodeURIComponent(row.dataset.runId)}`);
        const bar = row.querySelector(".progress");
        if (bar) setProgress(bar, run.progress);
        const stage = row.querySelector("[data-stage]");
        if (stage) stage.textContent = `${run.stage} · ${run.progress}%`;
        if (run.status === "succeeded" || run.status === "failed") finished = true;
      } catch (_) { /* the next poll tries again */ }
    }
    if (finished) window.location.reload();
    else setTimeout(poll, 1000);
  }
  setTimeout(poll, 800);
})();
