// The photosearch page. Everything the server sends is put in the page with textContent or
// as attribute values, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const K = 24;

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key === "className") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  let body;
  try { body = await response.json(); } catch { body = {}; }
  if (!response.ok) throw new Error(body.error || `the server answered ${response.status}`);
  return body;
}

function fileName(path) {
  const parts = String(path).split("/");
  return parts[parts.length - 1] || String(path);
}

// -- status line ------------------------------------------------------------------------------
async function showStatus() {
  try {
    const s = await getJSON("/api/status");
    const p = s.photos;
    const parts = [`${p.indexed} photos indexed`];
    if (p.pending) parts.push(`${p.pending} pending`);
    if (p.failed) parts.push(`${p.failed} failed`);
    if (p.missing) parts.push(`${p.missing} missing`);
    const fp = s.model.fingerprint ? s.model.fingerprint.slice(0, 12) : "unreadable";
    parts.push(`model ${fileName(s.model.checkpoint)} (${fp})`);
    const d = s.daemon;
    parts.push(d.running ? `daemon running (pid ${d.pid})` + (d.scanning ? `, scanning ${d.scanning.done}/${d.scanning.total}` : "")
                         : "daemon not running");
    $("status").textContent = parts.join(" · ");
    $("status").title = s.library.path;
    if (s.model.mismatch) $("status").textContent += " · library indexed with another model: run photosearch reindex";
  } catch (err) {
    $("status").textContent = `Status unavailable: ${err.message}`;
  }
}

// -- results ------------------------------------------------------------------------------------
function card(hit) {
  const img = el("img", { src: hit.thumb, alt: hit.name, loading: "lazy", width: "256", height: "256" });
  img.addEventListener("error", () => img.replaceWith(el("span", { className: "no-preview", text: "no preview" })));
  const open = el("button", { type: "button", className: "thumb", title: "Show the photo" }, [img]);
  open.addEventListener("click", () => showPhoto(hit));
  const more = el("button", { type: "button", className: "more", text: "More like this" });
  more.addEventListener("click", () => similar(hit.id, hit.name));
  const meta = el("div", { className: "meta" }, [
    el("span", { className: "score", text: `${hit.rank}. score ${hit.score.toFixed(3)}` }),
    el("span", { className: "path", title: hit.path, text: hit.path }),
    more,
  ]);
  return el("figure", { className: "card", "data-id": String(hit.id), "data-path": hit.path }, [open, meta]);
}

function render(title, answer) {
  const grid = $("results");
  grid.replaceChildren(...answer.results.map(card));
  grid.dataset.state = "done";
  const n = answer.results.length;
  $("message").textContent = n ? `${title}: ${n} photo${n === 1 ? "" : "s"}, best first` : `${title}: no photos found`;
}

async function run(title, url) {
  const grid = $("results");
  grid.dataset.state = "loading";
  $("message").textContent = `${title}…`;
  try {
    render(title, await getJSON(url));
  } catch (err) {
    grid.replaceChildren();
    grid.dataset.state = "error";
    $("message").textContent = `Error: ${err.message}`;
  }
}

function search(text, remember = true) {
  text = text.trim();
  if (!text) return;
  if (remember) history.pushState({ q: text }, "", `?q=${encodeURIComponent(text)}`);
  run(`Photos matching “${text}”`, `/api/search?q=${encodeURIComponent(text)}&k=${K}`);
}

function similar(id, name) {
  closeViewer();
  history.pushState({ like: id, name }, "", `?like=${encodeURIComponent(id)}`);
  run(`Photos like ${name}`, `/api/similar?id=${encodeURIComponent(id)}&k=${K}`);
}

// -- full-size viewer ---------------------------------------------------------------------------
let viewing = null;

function showPhoto(hit) {
  viewing = hit;
  $("viewer-img").src = hit.photo;
  $("viewer-img").alt = hit.name;
  const tags = (hit.tags || []).map((tag) => tag.name).join(", ");
  const copies = (hit.copies || []).length ? ` · ${hit.copies.length} identical cop${hit.copies.length > 1 ? "ies" : "y"}` : "";
  $("viewer-caption").textContent = `${hit.path} (score ${hit.score.toFixed(3)})${tags ? ` · tags: ${tags}` : ""}${copies}`;
  $("viewer-open").href = hit.photo;
  $("viewer").hidden = false;
  $("viewer-close").focus();
}

function closeViewer() {
  $("viewer").hidden = true;
  $("viewer-img").removeAttribute("src");
  viewing = null;
}

// -- wiring -------------------------------------------------------------------------------------
function fromLocation() {
  const params = new URLSearchParams(location.search);
  if (params.get("q")) {
    $("q").value = params.get("q");
    search(params.get("q"), false);
  } else if (/^[0-9]+$/.test(params.get("like") || "")) {
    run(`Photos like photo ${params.get("like")}`, `/api/similar?id=${params.get("like")}&k=${K}`);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    search($("q").value);
  });
  $("viewer-close").addEventListener("click", closeViewer);
  $("viewer-similar").addEventListener("click", () => viewing && similar(viewing.id, viewing.name));
  $("viewer").addEventListener("click", (event) => { if (event.target === $("viewer")) closeViewer(); });
  document.addEventListener("keydown", (event) => { if (event.key === "Escape") closeViewer(); });
  window.addEventListener("popstate", fromLocation);
  showStatus();
  fromLocation();
});
