/* A run that is queued or running: follow GET /api/v1/runs/{id}, then show the dashboard. */
"use strict";

(() => {
  const { api, setProgress } = window.SIS;
  const box = document.getElementById("run-progress");
  if (!box) return;
  const bar = box.querySelector(".progress");
  const status = document.getElementById("run-status");

  async function poll() {
    try {
      const run = await api("GET", `/api/v1/runs/${encodeURIComponent(box.dataset.runId)}`);
      setProgress(bar, run.progress);
      status.textContent = `${run.stage} · ${run.progress}%`;
      if (run.status === "succeeded" || run.status === "failed") {
        window.location.reload();
        return;
      }
    } catch (_) { /* the next poll tries again */ }
    setTimeout(poll, 600);
  }
  setTimeout(poll, 400);
})();
