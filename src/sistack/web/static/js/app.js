/* Shared helpers: API calls, number formats (the same rules as the server's filters), charts.
   No number is computed here: the page shows what the API returns, formatted. */
"use strict";

const SIS = (() => {
  const DASH = "—";
  const WIDE = 400;

  /** The session's CSRF token (sent with every request that changes state). */
  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  /** Call the API; an error answer becomes an Error carrying the API's own message. */
  async function api(method, url, body, { signal } = {}) {
    const init = { method, headers: { Accept: "application/json" }, signal };
    if (method !== "GET" && method !== "HEAD") init.headers["X-CSRF-Token"] = csrfToken();
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(url, init);
    if (response.status === 401 && document.querySelector(".topbar .session")) {
      // The session ended (logged out elsewhere, key revoked, expired): log in again.
      window.location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    }
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!response.ok) throw apiError(response.status, data, text);
    return data;
  }

  function apiError(status, data, text) {
    const error = new Error(
      (data && data.error && data.error.message) || text || `The server answered ${status}.`);
    error.status = status;
    error.code = data && data.error ? data.error.code : "http_error";
    error.details = data && data.error ? data.error.details || {} : {};
    return error;
  }

  /** Show an API error in an alert element: the message verbatim, then the listed problems. */
  function showError(element, error) {
    element.textContent = error.message;
    const problems = (error.details && error.details.problems) || [];
    for (const p of problems.slice(0, 8)) {
      const line = document.createElement("span");
      line.className = "details";
      line.textContent = typeof p === "string" ? p : `${p.field ? p.field + ": " : ""}${p.message}`;
      element.appendChild(line);
    }
    element.hidden = false;
  }

  function hideError(element) { element.hidden = true; element.textContent = ""; }

  const missing = (v) => v === null || v === undefined || (typeof v === "number" && !isFinite(v));
  const fixed = (v, digits) => v.toLocaleString("en-US", {
    minimumFractionDigits: digits, maximumFractionDigits: digits });

  const fmt = {
    integer: (v) => (missing(v) ? DASH : fixed(Math.round(v), 0)),
    number: (v, digits = 2) => (missing(v) ? DASH : fixed(v, digits)),
    money(v) {  // the rules of the server's fmt_money
      if (missing(v)) return DASH;
      if (Math.abs(v) >= 9999.5) v = Number(v.toPrecision(3));  // 999,999 reads 1.00M
      for (const [start, unit, suffix] of [[1e9, 1e9, "B"], [1e6, 1e6, "M"], [1e4, 1e3, "K"]]) {
        if (Math.abs(v) >= start) {
          const scaled = v / unit, size = Math.abs(scaled);
          return fixed(scaled, size < 10 ? 2 : size < 100 ? 1 : 0) + suffix;
        }
      }
      return fixed(v, 0);
    },
    signedMoney(v) {
      if (missing(v)) return DASH;
      const text = fmt.money(v);
      return v < 0 || text === "0" ? text : "+" + text;
    },
    pct: (v, digits = 1) => (missing(v) ? DASH : (v * 100).toFixed(digits) + "%"),
    signedPct(v, digits = 0) {
      if (missing(v)) return DASH;
      const text = (v * 100).toFixed(digits);
      return (v > 0 ? "+" : "") + text + "%";
    },
  };

  function debounce(fn, ms) {
    let timer = null;
    return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  }

  /** Draw every chart whose spec the server put in the page (vega-embed, local bundle). */
  function renderCharts(root = document) {
    if (typeof window.vegaEmbed !== "function") return;
    for (const script of root.querySelectorAll("script[data-chart-spec]")) {
      const target = script.parentElement.querySelector(`[data-chart="${script.dataset.chartSpec}"]`);
      if (!target || target.dataset.rendered) continue;
      target.dataset.rendered = "1";
      const spec = JSON.parse(script.textContent);
      // Wide charts take the card's width (their height stays as designed); small ones keep theirs.
      if (typeof spec.width === "number" && spec.width >= WIDE) {
        spec.width = "container";
      }
      // ast: Vega evaluates expressions with its interpreter instead of compiling them with
      // Function(): the page's Content-Security-Policy has no 'unsafe-eval'.
      window.vegaEmbed(target, spec, { actions: false, renderer: "svg", ast: true })
        .then(() => target.setAttribute("data-ready", "1"))
        .catch((err) => { target.textContent = `This chart could not be drawn: ${err.message}`; });
    }
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function setProgress(bar, percent) {
    bar.setAttribute("aria-valuenow", String(percent));
    bar.firstElementChild.style.width = `${percent}%`;
  }

  document.addEventListener("DOMContentLoaded", () => renderCharts());
  return { api, csrfToken, showError, hideError, fmt, debounce, renderCharts, el, setProgress };
})();
window.SIS = SIS;
