// The photosearch page: a gallery of the library (newest first, by month) and searches, both
// loading more as one scrolls, under one set of filters. Everything the server sends is put in
// the page with textContent or as attribute values, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const K = 24;
const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
                "October", "November", "December"];

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

async function getJSON(url, options = {}) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, ...options });
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
    parts.push(d.running ? `daemon ${d.starting ? "starting" : "running"} (pid ${d.pid})` +
                           (d.scanning ? `, scanning ${d.scanning.done}/${d.scanning.total}` : "")
                         : "daemon not running");
    $("status").textContent = parts.join(" · ");
    $("status").title = s.library.path;
    if (s.model.mismatch) $("status").textContent += " · library indexed with another model: run photosearch reindex";
    $("roots").replaceChildren(...s.roots.map((r) => el("option", { value: r.path })));
  } catch (err) {
    $("status").textContent = `Status unavailable: ${err.message}`;
  }
  try {  // the tags, where the server keeps them
    const t = await getJSON("/api/tags");
    $("tags").replaceChildren(...(t.tags || []).map((tag) => el("option", { value: tag.name || tag.tag || tag })));
  } catch { /* no tags on this server */ }
}

// -- filters ------------------------------------------------------------------------------------
const FILTERS = ["from", "to", "under", "tag"];

function filterParams() {
  const params = new URLSearchParams();
  for (const name of FILTERS) {
    const value = $(name).value.trim();
    if (value) params.set(name, value);
  }
  return params;
}

function describeFilters() {
  const p = filterParams();
  const parts = [];
  if (p.get("from") || p.get("to")) parts.push(`taken ${p.get("from") || "…"} to ${p.get("to") || "…"}`);
  if (p.get("under")) parts.push(`in ${p.get("under")}`);
  if (p.get("tag")) parts.push(`tagged ${p.get("tag")}`);
  return parts.length ? ` (${parts.join(", ")})` : "";
}

// -- results ------------------------------------------------------------------------------------
let view = null;  // {title, url(offset), upload, offset, hits, more, grouped}
let loading = false;

function card(hit, index) {
  const img = el("img", { src: hit.thumb, alt: hit.name, loading: "lazy", width: "256", height: "256" });
  img.addEventListener("error", () => img.replaceWith(el("span", { className: "no-preview", text: "no preview" })));
  const open = el("button", { type: "button", className: "thumb", title: hit.path }, [img]);
  open.addEventListener("click", () => showPhoto(index));
  const more = el("button", { type: "button", className: "more", text: "More like this" });
  more.addEventListener("click", () => similar(hit.id, hit.name));
  const facts = [];
  if (hit.rank !== undefined) facts.push(`${hit.rank}. score ${hit.score.toFixed(3)}`);
  if (hit.taken_at) facts.push(hit.taken_at.slice(0, 10));
  const meta = el("div", { className: "meta" }, [
    el("span", { className: "name", title: hit.path, text: hit.name }),
    el("span", { className: "facts", text: facts.join(" · ") }),
    more,
  ]);
  return el("figure", { className: "card", "data-id": String(hit.id), "data-path": hit.path }, [open, meta]);
}

function monthOf(hit) {
  if (!hit.taken_at) return "Date unknown";
  return `${MONTHS[Number(hit.taken_at.slice(5, 7)) - 1]} ${hit.taken_at.slice(0, 4)}`;
}

function append(hits) {
  const box = $("results");
  const start = view.hits.length;
  view.hits.push(...hits);
  hits.forEach((hit, i) => {
    let grid = box.lastElementChild;
    if (view.grouped) {
      const month = monthOf(hit);
      if (!grid || grid.dataset.month !== month) {
        box.append(el("h2", { className: "month", text: month }));
        grid = el("div", { className: "grid", "data-month": month });
        box.append(grid);
      }
    } else if (!grid) {
      grid = el("div", { className: "grid" });
      box.append(grid);
    }
    grid.append(card(hit, start + i));
  });
}

async function load() {
  if (loading || !view) return;
  loading = true;
  const mine = view;
  const box = $("results");
  box.dataset.state = "loading";
  $("load-more").hidden = true;
  try {
    const url = mine.url(mine.offset);
    const answer = await getJSON(url, mine.upload ? { method: "POST", body: mine.upload } : {});
    if (view !== mine) return;  // another view started meanwhile
    append(answer.results);
    mine.offset += answer.results.length;
    mine.more = Boolean(answer.more) && answer.results.length > 0;
    const n = mine.hits.length;
    $("message").textContent = n ? `${mine.title}${describeFilters()}: ${n}${mine.more ? "+" : ""} photo${n === 1 ? "" : "s"}${mine.grouped ? ", newest first" : ", best first"}`
                                 : `${mine.title}${describeFilters()}: no photos found`;
    if (answer.no_good_match) {
      $("note").textContent = "No good match: even the best of these scores below the threshold of a likely match; they are only the closest there are.";
      $("note").hidden = false;
    }
    $("load-more").hidden = !mine.more;
    box.dataset.state = "done";
  } catch (err) {
    if (view !== mine) return;
    box.dataset.state = "error";
    $("message").textContent = `Error: ${err.message}`;
  } finally {
    loading = false;
  }
}

function start(title, url, { grouped = false, upload = null } = {}) {
  view = { title, url, upload, offset: 0, hits: [], more: false, grouped };
  $("results").replaceChildren();
  $("note").hidden = true;
  $("message").textContent = `${title}…`;
  loading = false;
  load();
}

function withFilters(base, offset) {
  const params = filterParams();
  params.set("k", String(K));
  params.set("offset", String(offset));
  return `${base}${base.includes("?") ? "&" : "?"}${params}`;
}

function browse() {
  start("All photos", (offset) => withFilters("/api/browse", offset), { grouped: true });
}

function search(text, remember = true) {
  text = text.trim();
  if (!text) return browse();
  if (remember) history.pushState({ q: text }, "", `?q=${encodeURIComponent(text)}`);
  start(`Photos matching “${text}”`, (offset) => withFilters(`/api/search?q=${encodeURIComponent(text)}`, offset));
}

function similar(id, name, remember = true) {
  closeViewer();
  if (remember) history.pushState({ like: id }, "", `?like=${encodeURIComponent(id)}`);
  start(`Photos like ${name}`, (offset) => withFilters(`/api/similar?id=${encodeURIComponent(id)}`, offset));
}

function similarToFile(file) {
  if (!file) return;
  start(`Photos like ${file.name}`, (offset) => withFilters("/api/similar-upload", offset), { upload: file });
}

// -- full-size viewer ---------------------------------------------------------------------------
let viewing = -1;

function showPhoto(index) {
  if (!view || index < 0 || index >= view.hits.length) return;
  viewing = index;
  const hit = view.hits[index];
  $("viewer-img").src = hit.photo;
  $("viewer-img").alt = hit.name;
  const tags = (hit.tags || []).map((tag) => tag.name).join(", ");
  const copies = (hit.copies || []).length ? `${hit.copies.length} identical cop${hit.copies.length > 1 ? "ies" : "y"}` : "";
  const facts = [hit.taken_at ? `taken ${hit.taken_at.slice(0, 10)}` : "", hit.score !== undefined ? `score ${hit.score.toFixed(3)}` : ""];
  const extra = [tags ? `tags: ${tags}` : "", copies].filter(Boolean).map((text) => ` · ${text}`).join("");
  $("viewer-caption").textContent = `${hit.path}${facts.some(Boolean) ? ` (${facts.filter(Boolean).join(", ")})` : ""}${extra}`;
  $("viewer-open").href = hit.photo;
  $("viewer").hidden = false;
  $("viewer").dataset.index = String(index);
  if (index >= view.hits.length - 2 && view.more) load();  // the next ones, before they are needed
}

function step(by) {
  if (viewing >= 0) showPhoto(Math.max(0, Math.min(view.hits.length - 1, viewing + by)));
}

function closeViewer() {
  $("viewer").hidden = true;
  $("viewer-img").removeAttribute("src");
  viewing = -1;
}

// -- wiring -------------------------------------------------------------------------------------
function fromLocation() {
  const params = new URLSearchParams(location.search);
  if (params.get("q")) {
    $("q").value = params.get("q");
    search(params.get("q"), false);
  } else if (/^[0-9]+$/.test(params.get("like") || "")) {
    similar(params.get("like"), `photo ${params.get("like")}`, false);
  } else {
    browse();
  }
}

function rerun() {
  if (!view) return browse();
  view.hits = [];
  start(view.title, view.url, { grouped: view.grouped, upload: view.upload });
}

document.addEventListener("DOMContentLoaded", () => {
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    search($("q").value);
  });
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    rerun();
  });
  $("clear-filters").addEventListener("click", () => {
    for (const name of FILTERS) $(name).value = "";
    rerun();
  });
  $("upload").addEventListener("change", () => similarToFile($("upload").files[0]));
  $("load-more").addEventListener("click", load);
  if ("IntersectionObserver" in window) {  // load more as one scrolls to the end
    new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting) && view && view.more) load();
    }, { rootMargin: "400px" }).observe($("load-more"));
  }
  $("viewer-close").addEventListener("click", closeViewer);
  $("viewer-prev").addEventListener("click", () => step(-1));
  $("viewer-next").addEventListener("click", () => step(1));
  $("viewer-similar").addEventListener("click", () => {
    if (viewing >= 0) similar(view.hits[viewing].id, view.hits[viewing].name);
  });
  $("viewer").addEventListener("click", (event) => { if (event.target === $("viewer")) closeViewer(); });
  document.addEventListener("keydown", (event) => {
    if ($("viewer").hidden) return;
    if (event.key === "Escape") closeViewer();
    else if (event.key === "ArrowRight") step(1);
    else if (event.key === "ArrowLeft") step(-1);
  });
  window.addEventListener("popstate", fromLocation);
  showStatus();
  fromLocation();
});
