/* Exports: the workbook is built in the background. A click asks the API to build it
   (POST /api/v1/runs/{id}/exports/workbook.xlsx: 202 with its progress while it builds, 200 when
   ready), shows the progress it reports, and downloads the file once it is there. Other exports
   are plain links. */
"use strict";

(() => {
  const { api, showError, hideError, setProgress } = window.SIS;
  const errorBox = document.getElementById("export-error");
  const POLL_MS = 1000;

  async function prepare(url) {
    // api() treats 202 as success: the body says "building" or "ready".
    return api("POST", url);
  }

  for (const link of document.querySelectorAll("a[data-export][data-background]")) {
    const name = link.dataset.export;
    const box = document.getElementById(`status-${name.replace(".", "-")}`);
    const bar = box.querySelector(".progress");
    const text = box.querySelector("[data-status-text]");
    let busy = false;

    link.addEventListener("click", async (event) => {
      event.preventDefault();
      if (busy) return;
      busy = true;
      hideError(errorBox);
      link.setAttribute("aria-busy", "true");
      link.dataset.state = "building";
      box.hidden = false;
      try {
        for (;;) {
          const status = await prepare(link.href);
          if (status.status === "ready") break;
          setProgress(bar, Math.round(status.progress * 100));
          text.textContent = `Preparing… ${Math.round(status.progress * 100)}%`;
          await new Promise((resolve) => setTimeout(resolve, Math.min(POLL_MS, (status.retry_after || 1) * 1000)));
        }
        setProgress(bar, 100);
        text.textContent = "Ready: the download has started.";
        link.dataset.state = "ready";
        window.location.assign(link.href);  // served as an attachment: the page stays
        setTimeout(() => { box.hidden = true; }, 5000);
      } catch (error) {
        link.dataset.state = "failed";
        box.hidden = true;
        showError(errorBox, error);
      } finally {
        busy = false;
        link.removeAttribute("aria-busy");
      }
    });
  }
})();
