// trueup's Reconciliation page: plain JavaScript against the JSON API it is served with (same origin).
// Every name, count and message from the API is put on the page as text, never as HTML.

import { SignInError, authorization, signIn, signInAgain, signOut } from "./sign-in.js";

const STATUSES = {
  under_licensed: { label: "Under-licensed", rank: 0 },
  unmapped: { label: "Unmapped", rank: 1 },
  over_licensed: { label: "Over-licensed", rank: 2 },
  matched: { label: "Matched", rank: 3 },
};
// What a card filter is called on the buttons that follow it ("Export Under-licensed only").
const FILTER_NAMES = {
  under_licensed: "Under-licensed",
  over_licensed: "Over-licensed",
  matched: "Properly licensed",
  unmapped: "Unmapped",
  set_aside: "Set aside",
};
// Decisions on gaps (PUT /decisions/{coverage}/{key}): what each kind is called.
const DECISIONS = {
  will_bill: "Will bill",
  will_adjust: "Will adjust",
  dismissed: "Dismissed",
  muted: "Muted",
};
const EXCLUSIONS = [
  ["duplicate", () => "Counted once (the same machine in another RMM)"],
  ["pending", () => "Pending approval"],
  ["inactive", () => "Inactive (deleted or suspended)"],
  ["excluded_by_rule", () => "Left out by an exclusion rule"],
  ["stale", (days) => `Stale (last seen over ${days} days before the sync)`],
  ["never_seen", () => "Never seen"],
  ["class_not_covered", () => "Device class not covered"],
];
// Pax8 and each RMM in use, as people write them (GET /syncs/current names them).
const SOURCE_NAMES = { pax8: "Pax8", rmm: "RMM", ninjaone: "NinjaOne", datto: "Datto RMM" };
const sourceName = (source) => state.current?.names?.[source] ?? SOURCE_NAMES[source] ?? source;
// The sources in use, in order: Pax8, then each RMM.
const sourcesInUse = () => Object.keys(state.current?.names ?? { pax8: "Pax8", ninjaone: "NinjaOne" });
// A source's current data (GET /syncs/current keeps the RMMs under "rmm"), null when never synced.
const currentOf = (source) => (source === "pax8" ? state.current?.pax8 : state.current?.rmm?.[source]) ?? null;
// When a snapshot's data of a source was synced (snapshots before several RMMs have one "rmm").
const snapshotDataOf = (snapshot, source) =>
  source === "pax8" ? snapshot.data_as_of.pax8 : (snapshot.data_as_of.rmm_sources?.[source] ?? snapshot.data_as_of.rmm);
const SYNC_POLL_MS = 1000;
const FRESHNESS_REFRESH_MS = 30_000;
const HISTORY_PAGE = 50;
const ROWS_PAGE = 100; // rows on screen at a time (the table pages, so the page stays light at any size)
const SEARCH_DELAY_MS = 250; // a search waits for a pause in typing
const MAPPINGS_PAGE = 50; // entries of each list of the Unmapped clients view at a time
const CHOICES = 20; // entries a picker offers at a time (its search narrows them)

// ------------------------------------------------------------------ small helpers

const $ = (id) => document.getElementById(id);

function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") element.className = value;
    else if (key === "text") element.textContent = value;
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

const dateTime = new Intl.DateTimeFormat("en", { dateStyle: "medium", timeStyle: "short" });
const fullDateTime = new Intl.DateTimeFormat("en", { dateStyle: "full", timeStyle: "long" });
const dayAndTime = new Intl.DateTimeFormat("en", { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" });
const monthYear = new Intl.DateTimeFormat("en", { month: "long", year: "numeric" });
const monthDay = new Intl.DateTimeFormat("en", { month: "short", day: "numeric" });
const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" });
const byName = new Intl.Collator("en", { sensitivity: "base", numeric: true });
const UNITS = [
  ["year", 365 * 86400],
  ["month", 30 * 86400],
  ["week", 7 * 86400],
  ["day", 86400],
  ["hour", 3600],
  ["minute", 60],
];

function ago(iso) {
  const seconds = (Date.now() - Date.parse(iso)) / 1000;
  if (seconds < 45) return "just now";
  for (const [unit, size] of UNITS) {
    if (seconds >= size) return relative.format(-Math.floor(seconds / size), unit);
  }
  return relative.format(-1, "minute");
}

function timeElement(iso, text) {
  return h("time", { datetime: iso, title: fullDateTime.format(new Date(iso)) }, text);
}

function plural(count, one, many) {
  return `${count} ${count === 1 ? one : many}`;
}

// Money as the API gives it (decimal text in the currency's minor unit: "13.50"), in that currency;
// a price as Pax8 sent it ("8.0") shows at least the currency's own digits ("$8.00"), never fewer.
const moneyFormats = new Map();
const minorDigits = new Map();
function money(text, currency, { sign = false } = {}) {
  const amount = Number(text);
  if (!minorDigits.has(currency)) {
    minorDigits.set(currency, new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits);
  }
  const digits = Math.max((String(text).split(".")[1] ?? "").length, minorDigits.get(currency));
  const key = `${currency}/${digits}/${sign}`;
  if (!moneyFormats.has(key)) {
    moneyFormats.set(
      key,
      new Intl.NumberFormat("en", {
        style: "currency",
        currency,
        minimumFractionDigits: digits,
        maximumFractionDigits: digits,
        signDisplay: sign ? "exceptZero" : "auto",
      }),
    );
  }
  return moneyFormats.get(key).format(amount);
}

// "in 90 days" from today (the page's clock) to an ISO date.
function daysUntil(isoDate) {
  const days = Math.round((Date.parse(`${isoDate}T00:00:00Z`) - Date.now()) / 86_400_000);
  return days <= 0 ? "today" : `in ${plural(days, "day", "days")}`;
}

function signed(value) {
  return value > 0 ? `+${value}` : String(value);
}

function fold(text) {
  // Search ignores case and accents: "cafe" finds "Café".
  return text.normalize("NFD").replace(/\p{Diacritic}/gu, "").toLowerCase();
}

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ------------------------------------------------------------------ the API

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, body, extraHeaders = {}) {
  let response;
  try {
    // Relative paths: the page may sit behind a path prefix (an API Gateway stage).
    const headers = { Accept: "application/json", ...authorization(), ...extraHeaders };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "trueup did not answer (is it running, and is this machine online?)");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (response.status === 401 && state.signIn === "oidc") {
    await signInAgain(); // the token expired or was refused: to the provider and back, then here again
  }
  if (!response.ok) {
    const message = data && typeof data.message === "string" && data.message ? data.message : response.statusText || "no message";
    throw new ApiError(response.status, message);
  }
  return data;
}

// ------------------------------------------------------------------ state

const state = {
  view: "reconciliation",
  snapshot: null, // the snapshot on screen: every coverage with its summary, no rows
  rows: null, // the shown coverage's page of rows as asked for: {items, total, start, next}
  rowsRequest: 0,
  rowsPage: ROWS_PAGE,
  showingLatest: true,
  history: [], // snapshot summaries, newest first
  historyCursor: null,
  coverageId: null,
  filter: null, // a status, from a card or the unmapped warning
  search: "",
  change: "", // "new", "closed" or "changed": rows with that change since the snapshot before
  decision: "", // ?decision=: a decision kind, "undecided" or "lapsed"
  sort: null, // {key, direction} or null for the API's order
  expanded: new Set(),
  current: null, // GET /syncs/current
  mappings: null, // GET /mappings: a page of each list of the Unmapped clients view
  mappingSearch: "",
  picking: null, // the entry whose picker is open: {kind: "pax8"|"rmm", id}
  ignoring: null, // the RMM organization whose "ignore" form is open (its id)
  ignored: null, // GET /ignored-organizations
  audit: { entries: [], next: null, kind: "", request: 0, loaded: false }, // GET /audit, newest first
  rules: null, // GET /rules
  syncing: false,
  startingSync: false, // this page is starting a sync (its run is followed by what started it)
  snapshotRequest: 0,
  mappingsRequest: 0,
  historyRequest: 0,
  currentRequest: 0,
  failed: new Map(), // what failed to load -> how to load it again
  signIn: null, // "off" or "oidc"
  canChange: false, // the admin role: take snapshots, sync, change mappings
};

// What a viewer cannot do, said once wherever it applies.
const ADMIN_ONLY = "Needs the admin role: you can read and export, but not change anything.";

function coverage() {
  return state.snapshot?.coverages.find((c) => c.id === state.coverageId) ?? null;
}

function rowKey(row) {
  return row.pax8_company_id ? `pax8:${row.pax8_company_id}` : `rmm:${row.rmm_organization_ids.join(",")}`;
}

// ------------------------------------------------------------------ messages

function showError(context, error, retry) {
  const detail = error instanceof ApiError ? `${error.message}${error.status ? ` (HTTP ${error.status})` : ""}` : String(error);
  $("error-text").textContent = `${context}: ${detail}`;
  if (retry) state.failed.set(context, retry);
  $("error-retry").hidden = state.failed.size === 0;
  $("error").hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error-text").textContent = "";
}

function notify(text) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
}

async function retryFailed() {
  const loaders = [...state.failed.values()];
  state.failed.clear();
  clearError();
  await Promise.all(loaders.map((load) => load()));
}

function setBusy(button, busy, busyLabel) {
  if (busy) {
    button.dataset.label ??= button.textContent;
    button.textContent = busyLabel;
    button.setAttribute("aria-busy", "true");
    button.disabled = true;
  } else {
    if (button.dataset.label !== undefined) button.textContent = button.dataset.label;
    delete button.dataset.label;
    button.removeAttribute("aria-busy");
    button.disabled = button.dataset.adminOnly !== undefined && !state.canChange;
  }
}

// The admin-only buttons of the page (mapping buttons are rendered with the same rule).
function adminButton(button) {
  button.dataset.adminOnly = "";
  if (!state.canChange) {
    button.disabled = true;
    button.title = ADMIN_ONLY;
  }
  return button;
}

function showWho(me) {
  state.canChange = me.roles.includes("admin");
  const roles = me.roles.length ? me.roles.join(", ") : "no trueup role";
  $("who-name").textContent = me.sign_in === "off" ? "Sign-in off (local)" : me.name || me.subject;
  $("who-role").textContent = me.sign_in === "off" ? "everyone is an admin" : roles;
  $("who").hidden = false;
  $("sign-out").hidden = me.sign_in === "off";
  for (const id of ["sync-now", "sync-and-snapshot", "take-snapshot", "empty-take-snapshot"]) adminButton($(id));
  $("role-note").hidden = state.canChange;
  $("role-note").textContent = me.roles.length
    ? `You are signed in as a viewer: you can read snapshots and export them. Taking snapshots, syncing and changing mappings need the admin role.`
    : `Your account has no trueup role (admin or viewer): ask an admin to give you one.`;
}

// ------------------------------------------------------------------ the address (#view=…&snapshot=…&coverage=…)

function readAddress() {
  const params = new URLSearchParams(location.hash.slice(1));
  return {
    view: ["unmapped", "rules", "audit"].includes(params.get("view")) ? params.get("view") : "reconciliation",
    snapshot: params.get("snapshot"),
    coverage: params.get("coverage"),
  };
}

function writeAddress(push = false) {
  const params = new URLSearchParams();
  if (state.view !== "reconciliation") params.set("view", state.view);
  if (state.snapshot && !state.showingLatest) params.set("snapshot", state.snapshot.id);
  if (state.snapshot && state.coverageId && state.coverageId !== state.snapshot.coverages[0]?.id) {
    params.set("coverage", state.coverageId);
  }
  const hash = params.toString();
  const url = hash ? `#${hash}` : location.pathname + location.search;
  if (url === (location.hash ? location.hash : location.pathname + location.search)) return;
  history[push ? "pushState" : "replaceState"](null, "", url);
}

async function followAddress() {
  const wanted = readAddress();
  showView(wanted.view);
  if (wanted.snapshot && wanted.snapshot !== state.snapshot?.id) {
    await loadSnapshot(wanted.snapshot, wanted.coverage);
  } else if (!wanted.snapshot && !state.showingLatest) {
    await loadSnapshot("latest", wanted.coverage);
  } else if (state.snapshot && wanted.coverage && wanted.coverage !== state.coverageId) {
    selectCoverage(wanted.coverage, false);
  }
}

// ------------------------------------------------------------------ views

function showView(view) {
  state.view = view;
  $("reconciliation-view").hidden = view !== "reconciliation";
  $("unmapped-view").hidden = view !== "unmapped";
  $("audit-view").hidden = view !== "audit";
  $("rules-view").hidden = view !== "rules";
  for (const link of document.querySelectorAll(".views a")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const titles = { unmapped: "Unmapped clients", audit: "Audit log", rules: "Exclusion rules" };
  document.title = `${titles[view] ?? "Reconciliation"} · trueup`;
  if (view === "unmapped") loadMappings();
  if (view === "audit") loadAudit();
  if (view === "rules") loadRules();
}

function goToView(view) {
  if (view === state.view) return;
  showView(view);
  writeAddress(true);
  $("main").focus();
}

// ------------------------------------------------------------------ loading

async function loadSnapshot(id, wantedCoverage = null, push = false) {
  const request = ++state.snapshotRequest;
  if (!state.snapshot) {
    $("loading").hidden = false;
    $("loading").textContent = "Loading the snapshot…";
  }
  try {
    let answer;
    try {
      answer = await api("GET", `snapshots/${encodeURIComponent(id)}?${rowQuery(wantedCoverage)}`);
    } catch (error) {
      // A coverage this snapshot does not have (an older snapshot, an old link): its first one instead.
      if (!(wantedCoverage && error instanceof ApiError && error.status === 404 && /no coverage/.test(error.message))) throw error;
      answer = await api("GET", `snapshots/${encodeURIComponent(id)}?${rowQuery(null)}`);
    }
    if (request !== state.snapshotRequest) return;
    state.failed.delete("Could not load the snapshot");
    showSnapshot(answer, id === "latest" || answer.id === state.history[0]?.id, push);
  } catch (error) {
    if (request !== state.snapshotRequest) return;
    if (error instanceof ApiError && error.status === 404 && id === "latest") {
      state.snapshot = null;
      state.showingLatest = true;
      render();
      return;
    }
    if (error instanceof ApiError && error.status === 404) {
      showError(`There is no snapshot ${id}; showing the latest instead`, error);
      await loadSnapshot("latest");
      return;
    }
    showError("Could not load the snapshot", error, () => loadSnapshot(id, wantedCoverage));
    if (!state.snapshot) {
      $("loading").hidden = false;
      $("loading").textContent = "The snapshot could not be loaded.";
    }
  }
}

// What the table asks the API for: one coverage, the card's status, the search and the sort.
function rowQuery(coverageId, cursor = null) {
  const query = new URLSearchParams({ limit: String(ROWS_PAGE) });
  if (coverageId) query.set("coverage", coverageId);
  // A card or the unmapped warning lists the rows it counts: those no decision sets aside.
  if (state.filter === "set_aside") query.set("set_aside", "true");
  else if (state.filter) {
    query.set("status", state.filter);
    query.set("set_aside", "false");
  }
  const needle = state.search.trim();
  if (needle) query.set("q", needle);
  if (state.change) query.set("change", state.change);
  if (state.decision) query.set("decision", state.decision);
  if (state.sort) query.set("sort", `${state.sort.direction === "descending" ? "-" : ""}${state.sort.key}`);
  if (cursor) query.set("cursor", cursor);
  return query;
}

// A page of the shown coverage's rows: the first again after a sort, a search, a card or another
// tab; `start` for the pager's Previous and Next (the API's cursor is where a page starts).
async function loadRows(start = 0) {
  const snapshot = state.snapshot;
  if (!snapshot || !state.coverageId) return;
  const request = ++state.rowsRequest;
  state.rowsTarget = start; // the page asked for last: a second click on Next goes on from it
  $("clients").setAttribute("aria-busy", "true");
  try {
    const query = rowQuery(state.coverageId, start ? String(start) : null);
    const answer = await api("GET", `snapshots/${encodeURIComponent(snapshot.id)}?${query}`);
    if (request !== state.rowsRequest || state.snapshot !== snapshot) return;
    state.failed.delete("Could not load the clients");
    const shown = answer.coverages.find((c) => c.rows);
    state.rows = { items: shown.rows, total: shown.rows_total, start, next: answer.next_cursor };
    // The page size the API answered with (it may answer fewer than asked): Previous goes back by it.
    if (answer.next_cursor) state.rowsPage = Number(answer.next_cursor) - start;
    state.expanded.clear();
    renderTable();
  } catch (error) {
    if (request !== state.rowsRequest) return;
    showError("Could not load the clients", error, () => loadRows(start));
  } finally {
    if (request === state.rowsRequest) $("clients").removeAttribute("aria-busy");
  }
}

async function loadHistory(more = false) {
  const query = new URLSearchParams({ limit: String(HISTORY_PAGE) });
  if (more && state.historyCursor) query.set("cursor", state.historyCursor);
  const request = ++state.historyRequest;
  try {
    const page = await api("GET", `snapshots?${query}`);
    if (request !== state.historyRequest) return; // a newer listing is on its way
    state.history = more ? [...state.history, ...page.items] : page.items;
    state.historyCursor = page.next_cursor;
    if (state.snapshot && !more) state.showingLatest = state.snapshot.id === state.history[0]?.id;
    renderSnapshotChoice();
  } catch (error) {
    showError("Could not list the snapshots", error, () => loadHistory(more));
  }
}

async function loadCurrent() {
  const request = ++state.currentRequest;
  try {
    const current = await api("GET", "syncs/current");
    if (request !== state.currentRequest) return; // an older answer must not undo a newer one
    state.current = current;
    renderFreshness();
  } catch (error) {
    showError("Could not read when the data was last synced", error, loadCurrent);
  }
}

// The count in the menu: how many companies and organizations are unmapped (no suggestions needed).
async function loadUnmappedCount() {
  try {
    const answer = await api("GET", "mappings?list=unmapped_pax8&limit=1");
    renderUnmappedCount(answer.summary);
  } catch (error) {
    showError("Could not count the unmapped clients", error, loadUnmappedCount);
  }
}

function renderUnmappedCount(summary) {
  const issues = summary.unmapped_pax8 + summary.unmapped_rmm;
  $("unmapped-pill").textContent = String(issues);
  $("unmapped-pill").hidden = issues === 0;
}

// The Unmapped clients view's first page of each list, asked for once the snapshot is on screen, so
// that opening the view shows it at once (it is built only then); opening it asks again for fresh lists.
let prefetchedMappings = null;

function prefetchMappings() {
  if (prefetchedMappings || state.view === "unmapped") return;
  prefetchedMappings = api("GET", `mappings?limit=${MAPPINGS_PAGE}`).catch(() => null);
}

// The Unmapped clients view, loaded when it is opened: a page of each list, searched on the server.
async function loadMappings() {
  if (state.view !== "unmapped") {
    await loadUnmappedCount();
    return;
  }
  const early = prefetchedMappings;
  prefetchedMappings = null;
  if (early && !state.mappings && !state.mappingSearch.trim()) {
    const request = state.mappingsRequest;
    const mappings = await early;
    if (mappings && request === state.mappingsRequest && state.view === "unmapped") {
      state.mappings = mappings;
      renderMappings();
    }
  }
  // Only the newest request counts: an older answer arriving late (one started before a save)
  // must not put the old mappings back on screen.
  const request = ++state.mappingsRequest;
  const query = new URLSearchParams({ limit: String(MAPPINGS_PAGE) });
  if (state.mappingSearch.trim()) query.set("q", state.mappingSearch.trim());
  try {
    const [mappings, ignored] = await Promise.all([api("GET", `mappings?${query}`), api("GET", "ignored-organizations")]);
    if (request !== state.mappingsRequest) return;
    state.failed.delete("Could not load the mappings");
    state.mappings = mappings;
    state.ignored = ignored.items;
    renderMappings();
  } catch (error) {
    if (request !== state.mappingsRequest) return;
    $("mappings-loading").textContent = "The mappings could not be loaded.";
    showError("Could not load the mappings", error, loadMappings);
  }
}

// Suggestions are worked out after each sync; until they are ready the view says so and asks again.
const SUGGESTIONS_AGAIN_MS = 3000;
let suggestionsTimer = null;

function followSuggestions() {
  if (suggestionsTimer !== null) return;
  suggestionsTimer = setTimeout(async () => {
    suggestionsTimer = null;
    if (state.view !== "unmapped" || !state.mappings?.suggestions_pending) return;
    const request = state.mappingsRequest;
    const query = new URLSearchParams({ list: "suggestions", limit: String(MAPPINGS_PAGE) });
    if (state.mappingSearch.trim()) query.set("q", state.mappingSearch.trim());
    try {
      const page = await api("GET", `mappings?${query}`);
      if (request !== state.mappingsRequest || !state.mappings) return;
      if (page.suggestions_pending) {
        followSuggestions();
        return;
      }
      state.mappings.suggestions = page.suggestions;
      state.mappings.next.suggestions = page.next.suggestions;
      state.mappings.summary.suggestions = page.summary.suggestions;
      state.mappings.suggestions_pending = false;
      renderMappings();
    } catch (error) {
      showError("Could not load the suggestions", error, followSuggestions);
    }
  }, SUGGESTIONS_AGAIN_MS);
}

// The next page of one list of the view.
async function loadMoreMappings(list) {
  const query = new URLSearchParams({ list, limit: String(MAPPINGS_PAGE), cursor: state.mappings.next[list] });
  if (state.mappingSearch.trim()) query.set("q", state.mappingSearch.trim());
  const request = state.mappingsRequest;
  try {
    const page = await api("GET", `mappings?${query}`);
    if (request !== state.mappingsRequest) return;
    state.mappings[list] = [...state.mappings[list], ...page[list]];
    state.mappings.next[list] = page.next[list];
    renderMappings();
  } catch (error) {
    showError("Could not load more", error, () => loadMoreMappings(list));
  }
}

async function resumeRunningSync() {
  // A sync started elsewhere (another tab, the schedule) shows its progress here too.
  try {
    const runs = await api("GET", "syncs?limit=1");
    const run = runs.items[0];
    // A sync this page started meanwhile is followed, and told, by what started it.
    if (state.syncing || state.startingSync) return;
    if (run && !runFinished(run)) await followRun(run);
  } catch (error) {
    showError("Could not check for a running sync", error, resumeRunningSync);
  }
}

// ------------------------------------------------------------------ actions

async function takeSnapshot() {
  const buttons = [$("take-snapshot"), $("empty-take-snapshot")];
  if (buttons[0].disabled) return;
  for (const button of buttons) setBusy(button, true, "Taking snapshot…");
  notify("Taking a snapshot: counting devices and licences for every client…");
  try {
    // One key per click: a retried or repeated request answers this snapshot instead of taking another.
    let snapshot = await api("POST", "snapshots", undefined, { "Idempotency-Key": crypto.randomUUID() });
    if (snapshot.snapshot?.state) {
      // 202: too much data to answer at once; the snapshot is taken in a cycle of its own.
      notify("Taking a snapshot of a large inventory: this can take a minute or two. You can keep reading the page.");
      snapshot = await cycleSnapshot(snapshot);
      if (!snapshot) return;
    }
    state.snapshotRequest++; // a slower load of another snapshot must not replace this one
    state.history = [snapshot, ...state.history.filter((s) => s.id !== snapshot.id)];
    if (state.view !== "reconciliation") showView("reconciliation");
    await loadSnapshot(snapshot.id, state.coverageId, true);
    const shown = coverage();
    notify(
      `Snapshot taken ${dateTime.format(new Date(snapshot.taken_at))}` +
        (shown ? `: ${plural(rowsIn(shown), "client", "clients")} in ${shown.name}.` : "."),
    );
  } catch (error) {
    notify("");
    showError("Could not take a snapshot", error);
  } finally {
    for (const button of buttons) setBusy(button, false);
  }
}

function runFinished(run) {
  return Object.values(run.sources).every((s) => s.status !== "queued" && s.status !== "running");
}

async function syncNow() {
  if (state.syncing) return;
  setBusy($("sync-now"), true, "Syncing…");
  state.startingSync = true;
  try {
    const run = await api("POST", "syncs", undefined, { "Idempotency-Key": crypto.randomUUID() });
    await followRun(run);
  } catch (error) {
    showError("Could not start a sync", error);
  } finally {
    state.startingSync = false;
    setBusy($("sync-now"), false);
  }
}

// Follows a sync run to its end, then says how it went. `inCycle`: the run of a "Sync & Snapshot",
// whose success is followed by its snapshot (said then), not by "take a snapshot".
async function followRun(run, inCycle = false) {
  state.syncing = true;
  setBusy($("sync-now"), true, "Syncing…");
  try {
    while (!runFinished(run)) {
      renderSyncProgress(run);
      await delay(SYNC_POLL_MS);
      run = await api("GET", `syncs/${encodeURIComponent(run.id)}`);
    }
  } catch (error) {
    showError("Lost track of the sync", error);
    return false;
  } finally {
    state.syncing = false;
    renderSyncProgress(null);
    setBusy($("sync-now"), false);
  }
  await loadCurrent();
  if (state.view === "unmapped" || state.mappings) loadMappings();
  const held = Object.entries(run.sources).filter(([, s]) => s.status === "held");
  if (held.length) {
    notify(
      `Sync held: ${held.map(([source, s]) => `${sourceName(source)}: ${s.held_reason}`).join("; ")}. The current data stays in use` +
        (inCycle ? ", and no snapshot was taken." : "."),
    );
    return false;
  }
  const failed = Object.entries(run.sources).filter(([, s]) => s.status === "failed");
  if (failed.length) {
    notify("");
    showError(
      "The sync failed",
      new Error(
        failed.map(([source, s]) => `${sourceName(source)}: ${s.error ?? "no error given"}`).join("; ") +
          (inCycle ? ". No snapshot was taken." : ""),
      ),
    );
    return false;
  }
  const counts = Object.entries(run.sources)
    .map(([source, s]) => `${sourceName(source)} ${plural(s.records ?? 0, "record", "records")}`)
    .join(", ");
  if (inCycle) notify(`Sync finished (${counts}). Taking the snapshot of the fresh data…`);
  else notify(`Sync finished (${counts}).${state.snapshot ? " Take a snapshot to reconcile the new data." : ""}`);
  return true;
}

// Waits for a cycle's snapshot: the snapshot (one row, enough to show it), or null when none was taken
// (said on the page).
async function cycleSnapshot(cycle) {
  while (["queued", "running"].includes(cycle.snapshot.state)) {
    await delay(SYNC_POLL_MS);
    cycle = await api("GET", `cycles/${encodeURIComponent(cycle.id)}`);
  }
  if (!cycle.snapshot_id) {
    notify("");
    showError("No snapshot was taken", new Error(cycle.snapshot.reason ?? `the snapshot ${cycle.snapshot.state}`));
    return null;
  }
  return api("GET", `snapshots/${encodeURIComponent(cycle.snapshot_id)}?limit=1`);
}

// Sync every source, then snapshot the fresh data (a cycle: its exports and notification follow on
// their own). The snapshot is shown as soon as it is taken.
async function syncAndSnapshot() {
  const button = $("sync-and-snapshot");
  if (button.disabled || state.syncing) return;
  setBusy(button, true, "Syncing…");
  state.startingSync = true;
  try {
    const cycle = await api("POST", "snapshots", { sync: true }, { "Idempotency-Key": crypto.randomUUID() });
    const run = await api("GET", `syncs/${encodeURIComponent(cycle.run_id)}`);
    if (!(await followRun(run, true))) return;
    setBusy(button, true, "Taking snapshot…");
    const snapshot = await cycleSnapshot(cycle);
    if (!snapshot) return;
    state.snapshotRequest++; // a slower load of another snapshot must not replace this one
    state.history = [snapshot, ...state.history.filter((s) => s.id !== snapshot.id)];
    if (state.view !== "reconciliation") showView("reconciliation");
    await loadSnapshot(snapshot.id, state.coverageId, true);
    const shown = coverage();
    notify(
      `Synced, and snapshot taken ${dateTime.format(new Date(snapshot.taken_at))}` +
        (shown ? `: ${plural(rowsIn(shown), "client", "clients")} in ${shown.name}.` : "."),
    );
  } catch (error) {
    notify("");
    showError("Could not sync and take a snapshot", error);
  } finally {
    state.startingSync = false;
    setBusy(button, false);
  }
}

async function exportReport() {
  const shown = coverage();
  if (!state.snapshot || !shown) return;
  const query = new URLSearchParams({ coverage: shown.id });
  if (state.filter && state.filter !== "set_aside") query.set("status", state.filter);
  await downloadExport($("export"), `export?${query}`, "the report", ["row", "rows"]);
  renderToolbar();
}

// An export of the shown snapshot (`what`: POST /snapshots/{id}/<what>), downloaded from its link.
async function downloadExport(button, what, name, [one, many]) {
  setBusy(button, true, "Preparing the CSV…");
  try {
    const link = await api("POST", `snapshots/${encodeURIComponent(state.snapshot.id)}/${what}`);
    // The link answers with Content-Disposition: attachment, so following it downloads the file and
    // leaves this page where it is (it is on the storage's origin, so `download` alone would not do).
    const anchor = h("a", { href: link.url, download: link.file_name, hidden: true });
    document.body.append(anchor);
    anchor.click();
    anchor.remove();
    notify(`Downloading ${link.file_name} (${plural(link.rows, one, many)}).`);
  } catch (error) {
    showError(`Could not export ${name}`, error);
  } finally {
    setBusy(button, false);
  }
}

async function saveMapping(companyId, organizationIds, done) {
  try {
    await api("PUT", `mappings/${encodeURIComponent(companyId)}`, { rmm_organization_ids: organizationIds });
    clearError();
    notify(`${done} Take a snapshot to see it in the reconciliation.`);
    await loadMappings();
  } catch (error) {
    showError("Could not save the mapping", error);
    renderMappings(); // gives the Save and Accept buttons back
  }
}

async function returnToAutomatic(mapping) {
  try {
    await api("DELETE", `mappings/${encodeURIComponent(mapping.pax8_company_id)}`);
    clearError();
    notify(`${mapping.client} is mapped automatically again. Take a snapshot to see it in the reconciliation.`);
    await loadMappings();
  } catch (error) {
    showError("Could not return the mapping to automatic", error);
    renderMappings();
  }
}

// ------------------------------------------------------------------ rendering: the snapshot

// A snapshot as the API answers it: every coverage's summary, and a page of one coverage's rows.
function showSnapshot(answer, latest, push = false) {
  const previous = state.snapshot;
  const shown = answer.coverages.find((c) => c.rows) ?? null;
  const { next_cursor: next, ...snapshot } = answer;
  snapshot.coverages = answer.coverages.map(({ id, name, summary }) => ({ id, name, summary }));
  state.snapshot = snapshot;
  state.showingLatest = latest;
  state.coverageId = shown?.id ?? null;
  state.rows = shown ? { items: shown.rows, total: shown.rows_total, start: 0, next } : null;
  if (next) state.rowsPage = Number(next);
  state.rowsRequest++; // rows asked for the previous snapshot must not land in this one
  if (previous?.id !== snapshot.id) state.expanded.clear();
  render();
  writeAddress(push);
}

function rowsIn(shown) {
  const summary = shown.summary;
  return summary.under_licensed + summary.over_licensed + summary.matched + summary.unmapped;
}

function render() {
  const snapshot = state.snapshot;
  $("loading").hidden = true;
  $("empty-state").hidden = snapshot !== null;
  $("snapshot-view").hidden = snapshot === null;
  renderSnapshotChoice();
  renderFreshness();
  if (state.rules) renderRules(); // the rules name the shown snapshot's coverages
  if (!snapshot) {
    renderEmptyState();
    return;
  }
  renderTabs();
  const shown = coverage();
  $("no-coverages").hidden = shown !== null;
  $("coverage-content").hidden = shown === null;
  if (shown) {
    renderCards();
    renderTable();
  }
}

function renderEmptyState() {
  const current = state.current;
  const missing = current ? sourcesInUse().filter((source) => !currentOf(source)) : [];
  $("empty-next-step").textContent = !current
    ? "Click Take Snapshot to take the first one."
    : missing.length
      ? `${missing.map(sourceName).join(" and ")} ${missing.length === 1 ? "has" : "have"} not been synced yet: click Sync now first, then Take Snapshot.`
      : "Your Pax8 and RMM data are synced: click Take Snapshot to take the first one.";
}

function renderSnapshotChoice() {
  const snapshot = state.snapshot;
  $("snapshot-choice").hidden = snapshot === null;
  $("snapshot-warnings").hidden = !snapshot?.warnings?.length;
  $("snapshot-warnings").replaceChildren(...(snapshot?.warnings ?? []).map((w) => h("li", {}, w)));
  if (!snapshot) {
    $("snapshot-meta").textContent = "";
    return;
  }
  const picker = $("snapshot-picker");
  const known = state.history.some((s) => s.id === snapshot.id) ? state.history : [...state.history, snapshot];
  const months = new Map();
  known.forEach((summary) => {
    const month = monthYear.format(new Date(summary.taken_at));
    if (!months.has(month)) months.set(month, []);
    months.get(month).push(summary);
  });
  picker.replaceChildren(
    ...[...months].map(([month, summaries]) =>
      h(
        "optgroup",
        { label: month },
        summaries.map((summary) =>
          h(
            "option",
            { value: summary.id, selected: summary.id === snapshot.id },
            dayAndTime.format(new Date(summary.taken_at)) +
              (summary.id === state.history[0]?.id ? " (latest)" : "") +
              (summary.trigger === "schedule" ? " · monthly" : ""),
          ),
        ),
      ),
    ),
  );
  picker.value = snapshot.id;
  const tag = $("snapshot-tag");
  tag.textContent = state.showingLatest ? "Latest" : "Earlier snapshot";
  tag.classList.toggle("earlier", !state.showingLatest);
  $("back-to-latest").hidden = state.showingLatest;
  $("older-snapshots").hidden = !state.historyCursor;

  const asOf = snapshot.data_as_of;
  const pax8 = dayAndTime.format(new Date(asOf.pax8));
  const rmm = dayAndTime.format(new Date(asOf.rmm));
  $("snapshot-meta").replaceChildren(
    "Taken ",
    timeElement(snapshot.taken_at, dateTime.format(new Date(snapshot.taken_at))),
    snapshot.trigger === "schedule" ? " by the monthly schedule" : snapshot.cycle_id ? " right after a sync" : "",
    ...(pax8 === rmm
      ? [" from data synced ", timeElement(asOf.pax8, pax8)]
      : [" from Pax8 data of ", timeElement(asOf.pax8, pax8), " and RMM data of ", timeElement(asOf.rmm, rmm)]),
  );
  renderChangeFilter();
}

// The snapshot taken just before the shown one, when the history the page has loaded holds it.
function snapshotBefore(snapshot) {
  const index = state.history.findIndex((s) => s.id === snapshot.id);
  return index >= 0 ? (state.history[index + 1] ?? null) : null;
}

function renderChangeFilter() {
  const select = $("change-filter");
  const before = snapshotBefore(state.snapshot);
  const first = !before && !state.historyCursor && state.history.length <= 1;
  const since = before ? ` since the snapshot of ${monthDay.format(new Date(before.taken_at))}` : "";
  const labels = { "": "All clients", new: `New gaps${since}`, closed: `Closed gaps${since}`, changed: `Changed gaps${since}` };
  for (const option of select.options) option.textContent = labels[option.value];
  select.disabled = first && !state.change;
  select.title = first ? "This is the first snapshot: nothing to compare it with yet" : "";
  select.value = state.change;
}

function setChangeFilter(value) {
  state.change = value;
  state.expanded.clear();
  loadRows();
}

function renderFreshness() {
  const current = state.current;
  const status = $("sync-status");
  if (!current) {
    status.replaceChildren();
    return;
  }
  const parts = [];
  for (const source of sourcesInUse()) {
    const name = sourceName(source);
    const data = currentOf(source);
    const part = data
      ? h("span", { class: "synced", "data-source": source }, `${name} synced `, timeElement(data.synced_at, ago(data.synced_at)))
      : h("span", { class: "synced", "data-source": source }, `${name} never synced`);
    parts.push(parts.length ? " · " : "", part);
  }
  const snapshot = state.snapshot;
  if (snapshot && state.showingLatest) {
    const newer = sourcesInUse().some(
      (source) => currentOf(source) && Date.parse(currentOf(source).synced_at) > Date.parse(snapshotDataOf(snapshot, source)),
    );
    if (newer) parts.push(" · ", h("span", { class: "stale-hint" }, "Newer data than this snapshot: take a snapshot to use it."));
  }
  status.replaceChildren(...parts);
  renderHeld(current.held ?? []);
  if (!state.snapshot) renderEmptyState();
}

// Syncs whose data was too short to replace the current data: an admin uses it anyway or discards it.
function renderHeld(held) {
  $("held-syncs").hidden = held.length === 0;
  $("held-list").replaceChildren(
    ...held.map((sync) => {
      const name = sourceName(sync.source);
      const decide = (action, label, busy) =>
        adminButton(
          h(
            "button",
            {
              type: "button",
              class: action === "accept" ? "button small" : "button small quiet",
              "aria-label": `${label}: the ${name} sync of ${dateTime.format(new Date(sync.finished_at))}`,
              onclick: (event) => decideHeld(sync, action, event.currentTarget, busy),
            },
            label,
          ),
        );
      return h(
        "li",
        { "data-run": sync.run_id, "data-source": sync.source },
        h("p", {}, h("strong", {}, `${name} sync of `, timeElement(sync.finished_at, dateTime.format(new Date(sync.finished_at)))), `: ${sync.reason}.`),
        h("span", { class: "warning-actions" }, decide("accept", "Use the new data", "Using it…"), decide("discard", "Discard it", "Discarding…")),
      );
    }),
  );
}

async function decideHeld(sync, action, button, busy) {
  setBusy(button, true, busy);
  const name = sourceName(sync.source);
  try {
    await api("POST", `syncs/${encodeURIComponent(sync.run_id)}/${encodeURIComponent(sync.source)}/${action}`);
    notify(
      action === "accept"
        ? `The new ${name} data is now current. Take a snapshot to reconcile it.`
        : `The held ${name} data was discarded; the current data stays.`,
    );
  } catch (error) {
    showError(action === "accept" ? "Could not use the held data" : "Could not discard the held data", error);
  } finally {
    await loadCurrent();
    if (state.view === "unmapped" || state.mappings) loadMappings();
  }
}

function renderSyncProgress(run) {
  const progress = $("sync-progress");
  if (!run) {
    progress.hidden = true;
    progress.textContent = "";
    return;
  }
  const parts = Object.entries(run.sources).map(([source, s]) => `${sourceName(source)} ${s.status}`);
  progress.textContent = `Syncing: ${parts.join(", ")}…`;
  progress.hidden = false;
}

function renderTabs() {
  const tabs = $("coverage-tabs");
  const coverages = state.snapshot.coverages;
  tabs.replaceChildren(
    ...coverages.map((c, index) =>
      h(
        "button",
        {
          type: "button",
          role: "tab",
          class: "tab",
          id: `coverage-tab-${index}`,
          "data-coverage": c.id,
          "aria-selected": String(c.id === state.coverageId),
          "aria-controls": "coverage-panel",
          tabindex: c.id === state.coverageId ? "0" : "-1",
          onclick: () => selectCoverage(c.id),
          onkeydown: (event) => moveBetweenTabs(event, index),
        },
        c.name,
      ),
    ),
  );
  const selected = coverages.findIndex((c) => c.id === state.coverageId);
  if (selected >= 0) $("coverage-panel").setAttribute("aria-labelledby", `coverage-tab-${selected}`);
  tabs.hidden = coverages.length === 0;
}

function moveBetweenTabs(event, index) {
  const count = state.snapshot.coverages.length;
  const target = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: count - 1 }[event.key];
  if (target === undefined) return;
  event.preventDefault();
  const next = (target + count) % count;
  selectCoverage(state.snapshot.coverages[next].id);
  $(`coverage-tab-${next}`).focus();
}

function selectCoverage(id, remember = true) {
  if (id === state.coverageId) return;
  state.coverageId = id;
  state.expanded.clear();
  renderTabs();
  renderCards();
  if (remember) writeAddress();
  loadRows();
}

// Per currency, what the card's rows come to a month and a year (the price gaps: what is not billed,
// or what clients overpay); nothing on a card whose rows have no price.
const CARD_MONEY = {
  under_licensed: ["under_licensed_price_gap", "a month not billed"],
  over_licensed: ["over_licensed_price_gap", "a month overpaid"],
};

function cardMoney(summary, status) {
  const [field, words] = CARD_MONEY[status] ?? [];
  if (!field) return [];
  return Object.entries(summary.money ?? {})
    .filter(([, totals]) => Number(totals[field]) !== 0)
    .map(([currency, totals]) => {
      const monthly = Math.abs(Number(totals[field]));
      const digits = (totals[field].split(".")[1] ?? "").length;
      const text = (amount) => money(amount.toFixed(digits), currency);
      return h(
        "span",
        { class: "card-money", "data-currency": currency, "data-monthly": totals[field] },
        h("strong", {}, `${text(monthly)} ${words}`),
        ` · ${text(monthly * 12)} a year`,
      );
    });
}

function renderCards() {
  const summary = coverage().summary;
  for (const card of document.querySelectorAll(".card")) {
    card.querySelector("[data-count]").textContent = String(summary[card.dataset.status]);
    card.querySelector("[data-money]").replaceChildren(...cardMoney(summary, card.dataset.status));
    card.setAttribute("aria-pressed", String(state.filter === card.dataset.status));
  }
  const warning = $("unmapped-warning");
  warning.hidden = summary.unmapped === 0;
  warning.querySelector("[data-count]").textContent = String(summary.unmapped);
  warning.querySelector("[data-noun]").textContent = summary.unmapped === 1 ? "unmapped client" : "unmapped clients";
  $("unmapped-filter").setAttribute("aria-pressed", String(state.filter === "unmapped"));
  $("unmapped-filter").textContent = state.filter === "unmapped" ? "Show all clients" : "Show them";
  renderSetAside(summary);
}

// Rows a decision sets aside (dismissed, muted): out of the cards, counted here with their money.
function renderSetAside(summary) {
  const note = $("set-aside");
  const counts = summary.set_aside ?? {};
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  note.hidden = total === 0;
  if (!total) return;
  const kinds = Object.entries(counts).map(([kind, n]) => `${n} ${DECISIONS[kind]?.toLowerCase() ?? kind}`).join(", ");
  const amounts = Object.entries(summary.set_aside_money ?? {}).flatMap(([currency, totals]) => [
    Number(totals.under_licensed_price_gap) ? `${money(totals.under_licensed_price_gap, currency)} a month not billed` : null,
    Number(totals.over_licensed_price_gap) ? `${money(String(-Number(totals.over_licensed_price_gap)), currency)} a month overpaid` : null,
  ]).filter(Boolean);
  note.querySelector("[data-text]").textContent =
    `${plural(total, "client", "clients")} set aside by a decision (${kinds})` + (amounts.length ? `: ${amounts.join(", ")}` : "") + ", in no card above.";
  const button = $("set-aside-filter");
  button.setAttribute("aria-pressed", String(state.filter === "set_aside"));
  button.textContent = state.filter === "set_aside" ? "Show all clients" : "Show them";
}

function toggleFilter(status) {
  state.filter = state.filter === status ? null : status;
  state.expanded.clear();
  renderCards();
  renderToolbar();
  loadRows();
}

function cycleSort(key) {
  // Ascending, then descending, then back to the API's order (under-licensed first).
  if (state.sort?.key !== key) state.sort = { key, direction: "ascending" };
  else if (state.sort.direction === "ascending") state.sort = { key, direction: "descending" };
  else state.sort = null;
  state.expanded.clear();
  renderSortHeaders();
  loadRows();
}

function renderSortHeaders() {
  for (const th of document.querySelectorAll("#clients th[data-key]")) {
    th.setAttribute("aria-sort", state.sort?.key === th.dataset.key ? state.sort.direction : "none");
  }
}

// The page of rows as the API answered it (sorted, searched and filtered there).
function renderTable() {
  const shown = coverage();
  const rows = state.rows?.items ?? [];
  renderSortHeaders();
  $("table-caption").textContent = `${shown.name}: clients, devices, licences and variance`;
  const body = $("rows");
  if (!rows.length) {
    const why = state.search.trim() ? `No client matches “${state.search.trim()}”` : "No clients";
    const filtered = state.filter ? ` among the ${FILTER_NAMES[state.filter]} clients` : "";
    body.replaceChildren(h("tr", { class: "empty-row" }, h("td", { colspan: "7" }, `${why}${filtered}.`)));
  } else {
    body.replaceChildren(...rows.flatMap((row, index) => renderRow(row, index)));
  }
  const start = state.rows?.start ?? 0;
  const pager = $("pager");
  pager.hidden = !state.rows || (start === 0 && !state.rows.next);
  if (!pager.hidden) {
    $("pager-position").textContent = `Clients ${start + 1}–${start + rows.length} of ${state.rows.total}`;
    $("pager-previous").disabled = start === 0;
    $("pager-next").disabled = !state.rows.next;
  }
  renderToolbar();
}

function numberCell(value, label, extraClass) {
  return h(
    "td",
    { class: `num ${extraClass}`, "data-label": label },
    value === null ? h("span", { class: "no-data" }, "No data") : String(value),
  );
}

// The monthly price gap: + not billed, - the client overpays; an over-licensed row whose licences are
// committed says when they can be reduced.
function monthlyCell(row) {
  const amounts = row.amounts;
  const renewal =
    row.status === "over_licensed" && row.commitment_ends
      ? h(
          "span",
          { class: "renewal", title: "Its licences are committed until then: they cannot be reduced sooner" },
          `reducible at renewal on ${row.commitment_ends}, ${daysUntil(row.commitment_ends)}`,
        )
      : null;
  if (!amounts) {
    const why = row.amounts_warning ?? (row.status === "unmapped" ? "No amount: the client is unmapped" : "No amount");
    return h("td", { class: "num monthly-cell", "data-label": "Monthly" }, h("span", { class: "no-data", title: why }, "—"), renewal);
  }
  const gap = Number(amounts.monthly_price_gap);
  return h(
    "td",
    { class: "num monthly-cell", "data-label": "Monthly" },
    h(
      "span",
      {
        class: `monthly${gap > 0 ? " positive" : gap < 0 ? " negative" : ""}`,
        title: `${money(amounts.unit_price, amounts.currency)} a licence a month`,
      },
      money(amounts.monthly_price_gap, amounts.currency, { sign: true }),
    ),
    renewal,
  );
}

const CHANGE_LABELS = { new: "New gap", closed: "Closed", changed: "Changed", same: "Same", first: "First" };

// Since the snapshot before: a new gap, a gap closed, a gap whose figures changed (with its old
// variance), or nothing to act on.
function changeCell(row) {
  if (!row.change) return h("td", { class: "change-cell" }, h("span", { class: "no-data", title: "Taken before changes were kept" }, "—"));
  const was = row.previous && row.change === "changed" ? ` (was ${row.previous.variance === null ? row.previous.status : signed(row.previous.variance)})` : "";
  const title = row.previous ? `Before: ${row.previous.devices ?? "no"} devices, ${row.previous.licenses ?? "no"} licences` : "No row in the snapshot before";
  return h("td", { class: "change-cell", "data-label": "Change" }, h("span", { class: `change ${row.change}`, title }, CHANGE_LABELS[row.change] + was));
}

function decisionBadge(decision) {
  if (!decision) return null;
  const label = decision.lapsed ? `${DECISIONS[decision.kind]}: lapsed` : decision.kind === "muted" && decision.until ? `Muted until ${decision.until}` : DECISIONS[decision.kind];
  return h("span", { class: `decision ${decision.kind}${decision.lapsed ? " lapsed" : ""}`, title: decision.lapsed ? decision.lapsed_because : decision.reason }, label);
}

// A client's own terms, on its row: devices included and its own tolerance.
function termsWords(row) {
  const words = [];
  if (row.allowance) words.push(`${row.allowance} included`);
  if (row.tolerance !== null && row.tolerance !== undefined) words.push(`tolerance ±${row.tolerance}`);
  return words.join(", ");
}

function termsBadge(row) {
  const words = termsWords(row);
  return words ? h("span", { class: "decision terms", title: "This client's own terms (see its detail)" }, words) : null;
}

function renderRow(row, index) {
  const key = rowKey(row);
  const open = state.expanded.has(key);
  const detailId = `detail-${index}`;
  const status = STATUSES[row.status];
  const tr = h(
    "tr",
    { class: `row${open ? " open" : ""}`, "data-status": row.status, "data-key": key },
    h(
      "td",
      { class: "client-cell" },
      h(
        "button",
        {
          type: "button",
          class: "client-toggle",
          "aria-expanded": String(open),
          "aria-controls": detailId,
          onclick: () => toggleDetail(key),
        },
        h("span", { class: "client-name" }, row.client),
        row.warnings.length ? h("span", { class: "warn-mark", title: row.warnings.join("\n") }, "⚠ may be low") : null,
      ),
    ),
    numberCell(row.devices, "Devices", "devices-cell"),
    numberCell(row.licenses, "Licenses", "licenses-cell"),
    h(
      "td",
      { class: "num variance-cell", "data-label": "Variance" },
      row.variance === null
        ? h("span", { class: "no-data", title: "No variance: one side has no data" }, "—")
        : h("span", { class: `variance${row.variance > 0 ? " positive" : row.variance < 0 ? " negative" : ""}` }, signed(row.variance)),
    ),
    monthlyCell(row),
    changeCell(row),
    h("td", { class: "status-cell" }, h("span", { class: `status ${row.status}` }, status.label), decisionBadge(row.decision), termsBadge(row)),
  );
  if (!open) return [tr];
  return [tr, h("tr", { class: "detail", id: detailId }, h("td", { colspan: "7" }, renderDetail(row)))];
}

// Opens or closes one row's detail in place: the rest of the table is left as it is.
function toggleDetail(key) {
  const tr = document.querySelector(`tr.row[data-key="${CSS.escape(key)}"]`);
  const index = state.rows.items.findIndex((row) => rowKey(row) === key);
  if (!tr || index < 0) return;
  const open = !state.expanded.has(key);
  if (open) state.expanded.add(key);
  else state.expanded.delete(key);
  const [row, detail] = renderRow(state.rows.items[index], index);
  if (tr.nextElementSibling?.classList.contains("detail")) tr.nextElementSibling.remove();
  tr.replaceWith(row);
  if (detail) row.after(detail);
  row.querySelector(".client-toggle").focus();
}

function renderDetail(row) {
  const days = state.snapshot.settings?.stale_after_days ?? 30;
  const sections = [];
  sections.push(
    h(
      "section",
      { class: "detail-company" },
      h("h3", {}, "Pax8 company"),
      row.pax8_company_id
        ? h("p", {}, row.client)
        : h("p", {}, "None: no Pax8 company holds this RMM organization, so there are no licences to compare."),
    ),
  );
  const names = row.rmm_organization_names ?? row.rmm_organization_ids;
  sections.push(
    h(
      "section",
      { class: "detail-organizations" },
      h("h3", {}, "RMM organizations"),
      names.length
        ? h("ul", {}, names.map((name, i) => h("li", {}, name, row.rmm_organization_ids[i] && name !== row.rmm_organization_ids[i] ? ` (${row.rmm_organization_ids[i]})` : "")))
        : h("p", {}, "None: this company has no RMM organization, so none of its devices are counted."),
      row.status === "unmapped"
        ? h("p", {}, h("a", { href: "#view=unmapped", class: "button small", onclick: (event) => { event.preventDefault(); goToView("unmapped"); } }, "Map this client"))
        : null,
    ),
  );
  const excluded = row.excluded ?? {};
  const total = EXCLUSIONS.reduce((sum, [reason]) => sum + (excluded[reason] ?? 0), 0);
  sections.push(
    h(
      "section",
      { class: "detail-excluded" },
      h("h3", {}, "Devices left out"),
      row.devices === null && total === 0
        ? h("p", {}, "No RMM data for this client.")
        : [
            h(
              "dl",
              {},
              EXCLUSIONS.flatMap(([reason, label]) => {
                const count = excluded[reason] ?? 0;
                return [h("dt", { "data-reason": reason }, label(days)), h("dd", { class: count ? "" : "zero", "data-reason": reason }, String(count))];
              }),
            ),
            h("p", {}, total ? `${plural(total, "device", "devices")} left out in all; ${row.devices ?? 0} counted.` : `None left out; ${row.devices ?? 0} counted.`),
            Object.keys(row.excluded_rules ?? {}).length
              ? h("p", { class: "by-rule" }, "By rule: ", Object.entries(row.excluded_rules).map(([name, n]) => `${name} (${n})`).join(", "), ".")
              : null,
          ],
    ),
  );
  if (row.pax8_company_id && row.devices !== null) sections.push(renderMoney(row));
  if (row.status !== "matched" || row.decision) sections.push(renderDecision(row));
  if (row.pax8_company_id) sections.push(renderTerms(row));
  sections.push(renderHistory(row));
  sections.push(renderEvidence(row));
  const warnings = [...row.warnings, ...(row.amounts_warning ? [row.amounts_warning] : [])];
  if (warnings.length) {
    sections.push(
      h("section", { class: "detail-warnings" }, h("h3", {}, "Warnings"), h("ul", { class: "warnings" }, warnings.map((w) => h("li", {}, w)))),
    );
  }
  return h("div", { class: "detail-grid" }, sections);
}

// The client's devices and licences over the last snapshots (up to the shown one), as a small chart.
function renderHistory(row) {
  const section = h("section", { class: "detail-history" }, h("h3", {}, "Devices and licences over time"), h("p", { class: "loading" }, "Loading…"));
  const key = row.pax8_company_id ?? row.rmm_organization_ids[0];
  const query = new URLSearchParams({ coverage: state.coverageId, snapshot: state.snapshot.id });
  api("GET", `clients/${encodeURIComponent(key)}/history?${query}`).then(
    (history) => section.replaceChildren(section.firstChild, historyChart(history.points)),
    (error) => section.replaceChildren(section.firstChild, h("p", {}, `Could not load the history: ${error.message}`)),
  );
  return section;
}

// What was decided about this gap, and (for an admin, on the latest snapshot) deciding or removing it.
function renderDecision(row) {
  const key = row.pax8_company_id ?? row.rmm_organization_ids[0];
  const section = h("section", { class: "detail-decision" }, h("h3", {}, "Decision"));
  const d = row.decision;
  if (d) {
    const by = d.decided_by?.name ?? d.decided_by?.subject ?? "someone";
    section.append(
      h("p", { class: "decision-now" }, h("strong", {}, DECISIONS[d.kind]), d.until ? ` until ${d.until}` : "", d.effective ? `, effective ${d.effective}` : "", `: “${d.reason}”, by ${by}, ${ago(d.decided_at)}.`),
    );
    if (d.lapsed) section.append(h("p", { class: "decision-lapsed" }, `Lapsed: ${d.lapsed_because}. The gap is undecided again.`));
  } else {
    section.append(h("p", {}, "Undecided."));
  }
  if (!state.showingLatest || row.status === "matched") return section;
  const kind = h("select", { "aria-label": "Decision", name: "kind" }, Object.entries(DECISIONS).map(([value, label]) => h("option", { value }, label)));
  const reason = h("input", { type: "text", name: "reason", "aria-label": "Reason", placeholder: "Why (required)", maxlength: "1000", required: "" });
  const until = h("input", { type: "date", name: "until", "aria-label": "Muted until" });
  const effective = h("input", { type: "date", name: "effective", "aria-label": "Effective" });
  const untilLabel = h("label", { hidden: "" }, "until ", until);
  const effectiveLabel = h("label", {}, "effective ", effective);
  kind.addEventListener("change", () => {
    untilLabel.hidden = kind.value !== "muted";
    effectiveLabel.hidden = !["will_bill", "will_adjust"].includes(kind.value);
  });
  const save = adminButton(h("button", { type: "submit", class: "button small" }, d ? "Replace decision" : "Record decision"));
  const form = h("form", { class: "decision-form" }, kind, reason, untilLabel, effectiveLabel, save);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { kind: kind.value, reason: reason.value };
    if (kind.value === "muted" && until.value) body.until = until.value;
    if (["will_bill", "will_adjust"].includes(kind.value) && effective.value) body.effective = effective.value;
    setBusy(save, true, "Saving…");
    try {
      await api("PUT", `decisions/${encodeURIComponent(state.coverageId)}/${encodeURIComponent(key)}`, body);
      notify(`Decision recorded for ${row.client}: ${DECISIONS[kind.value]}. It applies from the next snapshot on.`);
    } catch (error) {
      showError("Could not record the decision", error);
    } finally {
      setBusy(save, false);
    }
  });
  section.append(form);
  if (d) {
    const remove = adminButton(h("button", { type: "button", class: "button small quiet" }, "Remove decision"));
    remove.addEventListener("click", async () => {
      setBusy(remove, true, "Removing…");
      try {
        await api("DELETE", `decisions/${encodeURIComponent(state.coverageId)}/${encodeURIComponent(key)}`);
        notify(`Decision removed for ${row.client}. It applies from the next snapshot on.`);
      } catch (error) {
        showError("Could not remove the decision", error);
      } finally {
        setBusy(remove, false);
      }
    });
    section.append(h("p", {}, remove));
  }
  return section;
}

// The client's own terms in this coverage: devices included (they count as licensed) and its own
// tolerance; an admin changes them on the latest snapshot, for the next one.
function renderTerms(row) {
  const key = row.pax8_company_id;
  const words = termsWords(row);
  const section = h(
    "section",
    { class: "detail-terms" },
    h("h3", {}, "Terms"),
    h("p", {}, words ? `${words}: variance = max(devices − ${row.allowance ?? 0}, 0) − licences.` : "None: no devices included, the settings' tolerance."),
  );
  if (!state.showingLatest || !state.canChange) return section;
  const allowance = h("input", { type: "number", min: "0", max: "1000000", step: "1", "aria-label": "Devices included", value: String(row.allowance ?? 0) });
  const tolerance = h("input", { type: "number", min: "0", max: "1000", step: "1", "aria-label": "Own tolerance", placeholder: "settings'", value: row.tolerance ?? "" });
  const reason = h("input", { type: "text", "aria-label": "Why (terms)", placeholder: "Why (optional)", maxlength: "1000" });
  const save = h("button", { type: "submit", class: "button small" }, "Save terms");
  const form = h("form", { class: "decision-form" }, h("label", {}, "included ", allowance), h("label", {}, "tolerance ", tolerance), reason, save);
  const path = `terms/${encodeURIComponent(state.coverageId)}/${encodeURIComponent(key)}`;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { allowance: Number(allowance.value || 0), tolerance: tolerance.value === "" ? null : Number(tolerance.value) };
    if (reason.value.trim()) body.reason = reason.value;
    setBusy(save, true, "Saving…");
    try {
      if (!body.allowance && body.tolerance === null) await api("DELETE", path);
      else await api("PUT", path, body);
      clearError();
      notify(`Terms saved for ${row.client}. They apply from the next snapshot on.`);
    } catch (error) {
      showError("Could not save the terms", error);
    } finally {
      setBusy(save, false);
    }
  });
  section.append(form);
  return section;
}

// The devices and subscriptions behind the row's counts, as the snapshot froze them.
const EVIDENCE_PAGE = 200;
const REASONS = {
  duplicate: "Counted once",
  pending: "Pending approval",
  inactive: "Inactive (deleted or suspended)",
  excluded_by_rule: "Left out by a rule",
  class_not_covered: "Device class not covered",
  never_seen: "Never seen",
  stale: "Stale",
};
const DEVICE_COLUMNS = [
  ["name", "Device"],
  ["organization", "RMM organization"],
  ["device_class", "Class"],
  ["last_seen", "Last seen"],
  ["reason", "Counted?"],
];

// "Yes", or why not: "No: Stale", "No: Left out by a rule (Loaners)", "No: counted once: seen in
// NinjaOne and Datto RMM, serial 5CG1234XYZ" (the same machine in two RMMs).
function deviceCounted(d) {
  if (!d.reason) return "Yes";
  if (d.reason === "duplicate" && d.rule) return `No: counted once: ${d.rule}`;
  return `No: ${REASONS[d.reason] ?? d.reason}${d.rule ? ` (${d.rule})` : ""}`;
}

function renderEvidence(row) {
  const key = row.pax8_company_id ?? row.rmm_organization_ids[0]; // the API's row key
  const section = h("section", { class: "detail-evidence", "data-key": key }, h("h3", {}, "Behind these counts"));
  const view = { sort: "reason", devices: [], answer: null };
  const body = h("div", { class: "evidence-body" }, h("p", { class: "loading" }, "Loading the devices and subscriptions…"));
  section.append(body);

  const load = async (more = false) => {
    const query = new URLSearchParams({ coverage: state.coverageId, client: key, sort: view.sort, limit: String(EVIDENCE_PAGE) });
    if (more && view.answer?.next_cursor) query.set("cursor", view.answer.next_cursor);
    try {
      const answer = await api("GET", `snapshots/${encodeURIComponent(state.snapshot.id)}/evidence?${query}`);
      view.devices = more ? [...view.devices, ...answer.devices] : answer.devices;
      view.answer = answer;
      body.replaceChildren(...evidenceParts(row, view, load));
    } catch (error) {
      body.replaceChildren(h("p", { class: "evidence-missing" }, error instanceof ApiError && error.status === 404 ? error.message : `Could not load the devices and subscriptions: ${error.message}`));
    }
  };
  load();
  return section;
}

function evidenceParts(row, view, load) {
  const answer = view.answer;
  const left = Object.values(answer.devices_left_out).reduce((a, b) => a + b, 0);
  const subscriptions = answer.subscriptions.length
    ? h(
        "table",
        { class: "evidence-subscriptions" },
        h("caption", {}, `Subscriptions (${answer.subscriptions.length})`),
        h("thead", {}, h("tr", {}, ["Product", "Quantity", "Status", "Term", "Price", "Commitment ends", "Counted?"].map((label) => h("th", { scope: "col" }, label)))),
        h(
          "tbody",
          {},
          answer.subscriptions.map((s) =>
            h(
              "tr",
              { class: s.counted ? "counted" : "left-out", "data-id": s.id },
              h("td", {}, s.product),
              h("td", { class: "num" }, String(s.quantity)),
              h("td", {}, s.status),
              h("td", {}, s.billing_term ?? "—"),
              h("td", { class: "num" }, s.price === null ? "no price" : money(s.price, s.currency ?? "USD")),
              h("td", {}, s.commitment_end ?? "—"),
              h("td", { class: "reason" }, s.counted ? (s.price_left_out ? `Yes (left out of the price: ${s.price_left_out})` : "Yes") : `No: ${s.reason}`),
            ),
          ),
        ),
      )
    : h("p", {}, row.pax8_company_id ? "No subscription of this coverage's products." : "No Pax8 company: no subscriptions.");
  const header = (field, label) => {
    const sorted = view.sort.replace(/^-/, "") === field;
    const descending = view.sort.startsWith("-");
    return h(
      "th",
      { scope: "col", "aria-sort": sorted ? (descending ? "descending" : "ascending") : "none" },
      h(
        "button",
        {
          type: "button",
          class: "sort",
          "data-sort": field,
          onclick: () => {
            view.sort = sorted && !descending ? `-${field}` : field;
            load();
          },
        },
        label,
        sorted ? (descending ? " ▼" : " ▲") : "",
      ),
    );
  };
  const devices = answer.devices_total
    ? h(
        "table",
        { class: "evidence-devices" },
        h("caption", {}, `Devices (${answer.devices_total}: ${answer.devices_counted} counted, ${left} left out)`),
        h("thead", {}, h("tr", {}, DEVICE_COLUMNS.map(([field, label]) => header(field, label)))),
        h(
          "tbody",
          {},
          view.devices.map((d) =>
            h(
              "tr",
              { class: d.reason ? "left-out" : "counted", "data-reason": d.reason ?? "counted" },
              h("td", {}, d.name),
              h("td", {}, d.organization),
              h("td", {}, d.device_class.replace("_", " ")),
              h("td", {}, d.last_seen ? timeElement(d.last_seen, dateTime.format(new Date(d.last_seen))) : "never"),
              h("td", { class: "reason" }, deviceCounted(d)),
            ),
          ),
        ),
      )
    : h("p", {}, row.rmm_organization_ids.length ? "No devices in its RMM organizations." : "No RMM organization: no devices.");
  const more = answer.next_cursor
    ? h("button", { type: "button", class: "button small", onclick: () => load(true) }, `Show ${Math.min(EVIDENCE_PAGE, answer.devices_total - view.devices.length)} more devices`)
    : null;
  const download = h("button", { type: "button", class: "button small evidence-export", onclick: (event) => exportEvidence(event.currentTarget, row.pax8_company_id ?? row.rmm_organization_ids[0]) }, "Download as CSV");
  // `more` is null on the last page: left out, not written as the text "null".
  return [h("p", { class: "evidence-note" }, `As the snapshot of ${dateTime.format(new Date(answer.taken_at))} froze them; later syncs do not change them.`), subscriptions, devices, more, h("p", {}, download)].filter(Boolean);
}

// The evidence CSV of one row (`key`), or of the whole coverage (null), downloaded like the report.
async function exportEvidence(button, key) {
  if (!state.snapshot) return;
  const query = new URLSearchParams({ coverage: state.coverageId });
  if (key) query.set("client", key);
  await downloadExport(button, `evidence/export?${query}`, "the evidence", ["line", "lines"]);
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attributes, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  element.append(...children);
  return element;
}

function historyChart(points) {
  if (points.length < 2) {
    return h("p", {}, points.length ? "Only this snapshot so far: the chart starts with the next one." : "No earlier figures.");
  }
  const width = 320, height = 120, left = 30, right = 8, top = 8, bottom = 22;
  const values = points.flatMap((p) => [p.devices, p.licenses]).filter((v) => v !== null);
  const high = Math.max(1, ...values);
  const x = (i) => left + (i * (width - left - right)) / (points.length - 1);
  const y = (v) => top + (1 - v / high) * (height - top - bottom);
  const line = (field, cls) => {
    const drawn = points.map((p, i) => [i, p[field]]).filter(([, v]) => v !== null);
    return [
      svg("polyline", { class: `line ${cls}`, fill: "none", points: drawn.map(([i, v]) => `${x(i)},${y(v)}`).join(" ") }),
      ...drawn.map(([i, v]) => svg("circle", { class: `dot ${cls}`, cx: x(i), cy: y(v), r: 2.5 }, svg("title", {}, `${cls}: ${v}`))),
    ];
  };
  const first = monthDay.format(new Date(points[0].taken_at));
  const last = monthDay.format(new Date(points.at(-1).taken_at));
  const described = points.map((p) => `${monthDay.format(new Date(p.taken_at))}: ${p.devices ?? "no"} devices, ${p.licenses ?? "no"} licences`).join("; ");
  return h(
    "figure",
    { class: "history-chart" },
    svg(
      "svg",
      { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": described, "data-points": points.length },
      svg("line", { class: "axis", x1: left, y1: height - bottom, x2: width - right, y2: height - bottom }),
      svg("text", { class: "tick", x: left - 4, y: y(high) + 4, "text-anchor": "end" }, String(high)),
      svg("text", { class: "tick", x: left - 4, y: height - bottom + 4, "text-anchor": "end" }, "0"),
      svg("text", { class: "tick", x: left, y: height - 6 }, first),
      svg("text", { class: "tick", x: width - right, y: height - 6, "text-anchor": "end" }, last),
      ...line("licenses", "licenses"),
      ...line("devices", "devices"),
    ),
    h("figcaption", {}, h("span", { class: "key devices" }, "Devices"), " ", h("span", { class: "key licenses" }, "Licences"), ` over the last ${plural(points.length, "snapshot", "snapshots")}`),
  );
}

// What the row's gap costs, both ways: what the client is billed, and what the MSP pays Pax8.
function renderMoney(row) {
  const a = row.amounts;
  if (!a) return h("section", { class: "detail-money" }, h("h3", {}, "Money"), h("p", {}, row.amounts_warning ?? "No amount."));
  const price = Number(a.monthly_price_gap);
  const cost = a.monthly_cost_gap === null ? null : Number(a.monthly_cost_gap);
  const billed =
    price > 0
      ? `${money(a.monthly_price_gap, a.currency)} a month not billed to the client`
      : price < 0
        ? `the client overpays ${money(String(-price), a.currency)} a month`
        : "nothing to bill or refund";
  const paid =
    cost === null
      ? "Pax8's cost is not known"
      : cost > 0
        ? `${money(a.monthly_cost_gap, a.currency)} a month more to buy from Pax8`
        : cost < 0
          ? `${money(String(-cost), a.currency)} a month paid to Pax8 for unused licences`
          : "no change in what you pay Pax8";
  return h(
    "section",
    { class: "detail-money" },
    h("h3", {}, "Money"),
    h(
      "dl",
      {},
      h("dt", {}, "Billed per licence and month"),
      h("dd", {}, money(a.unit_price, a.currency)),
      h("dt", {}, "Pax8 cost per licence and month"),
      h("dd", {}, a.unit_cost === null ? "not known" : money(a.unit_cost, a.currency)),
    ),
    h("p", { class: "money-gap" }, `${billed}; ${paid}.`),
    row.commitment_ends ? h("p", {}, `Committed until ${row.commitment_ends} (${daysUntil(row.commitment_ends)}).`) : null,
  );
}

function renderToolbar() {
  const shown = coverage();
  if (!shown) return;
  const total = rowsIn(shown);
  const matching = state.rows?.total ?? total;
  const clients = plural(total, "client", "clients");
  $("row-count").textContent = matching === total ? clients : `Showing ${matching} of ${clients}`;
  const clear = $("clear-filter");
  clear.hidden = !state.filter;
  clear.textContent = state.filter ? `Clear filter: ${FILTER_NAMES[state.filter]}` : "Clear filter";
  const button = $("export");
  if (button.getAttribute("aria-busy") === "true") return;
  button.textContent = state.filter && state.filter !== "set_aside" ? `Export ${FILTER_NAMES[state.filter]} only` : "Export Report";
  button.title = state.search.trim()
    ? "The CSV holds every row of this coverage" + (state.filter ? " with this status" : "") + "; the search box does not narrow it."
    : `Download ${shown.name} as CSV`;
}

// ------------------------------------------------------------------ rendering: mappings

function renderMappings() {
  const data = state.mappings;
  $("mappings-loading").hidden = true;
  $("mappings-content").hidden = false;
  renderUnmappedCount(data.summary);
  const needle = state.mappingSearch.trim();
  const none = (text) => [h("li", { class: "none-left" }, needle ? `Nothing matches “${needle}”.` : text)];

  if (data.suggestions_pending) followSuggestions();
  $("suggestions").replaceChildren(
    ...(data.suggestions_pending
      ? [h("li", { class: "none-left", role: "status" }, "Working out suggestions for the latest data… They appear here by themselves in a moment.")]
      : data.suggestions.length
      ? data.suggestions.map((s) =>
          h(
            "li",
            { "data-company": s.pax8_company_id, "data-organization": s.rmm_organization_id },
            h(
              "div",
              { class: "mapping-names" },
              h("span", { class: "side" }, "Pax8 "),
              h("strong", {}, s.client),
              h("span", { class: "arrow", "aria-hidden": "true" }, "↔"),
              h("span", { class: "side" }, "RMM "),
              h("strong", {}, s.rmm_organization_name),
            ),
            h("span", { class: "score" }, `${Math.round(s.score)}% similar`),
            adminButton(h(
              "button",
              {
                type: "button",
                class: "button small quiet",
                "aria-label": `Reject: ${s.rmm_organization_name} is not ${s.client}`,
                onclick: (event) => rejectSuggestion(s, event.currentTarget),
              },
              "Reject",
            )),
            adminButton(h(
              "button",
              {
                type: "button",
                class: "button small",
                "aria-label": `Accept: ${s.rmm_organization_name} belongs to ${s.client}`,
                onclick: (event) => {
                  setBusy(event.currentTarget, true, "Saving…");
                  accept(s.pax8_company_id, s.rmm_organization_id, `Saved: ${s.rmm_organization_name} now counts for ${s.client}.`);
                },
              },
              "Accept",
            )),
          ),
        )
      : none("No suggestions: every similar name is mapped or dismissed.")),
    ...moreOf("suggestions"),
  );
  $("unmapped-pax8").replaceChildren(
    ...(data.unmapped_pax8.length
      ? data.unmapped_pax8.map((company) => unmappedEntry({ kind: "pax8", id: company.pax8_company_id, name: company.client }))
      : none("Every Pax8 company has an RMM organization.")),
    ...moreOf("unmapped_pax8"),
  );
  $("unmapped-rmm").replaceChildren(
    ...(data.unmapped_rmm.length
      ? data.unmapped_rmm.map((organization) => unmappedEntry({ kind: "rmm", id: organization.rmm_organization_id, name: organization.name }))
      : none("Every RMM organization belongs to a Pax8 company.")),
    ...moreOf("unmapped_rmm"),
  );
  $("manual-mappings").replaceChildren(
    ...(data.manual.length
      ? data.manual.map((m) =>
          h(
            "li",
            {},
            h(
              "div",
              { class: "mapping-names" },
              h("strong", {}, m.client),
              h("span", { class: "arrow", "aria-hidden": "true" }, "↔"),
              (m.rmm_organizations ?? []).map((o) => o.name).join(", ") || "no RMM organization",
            ),
            adminButton(h("button", { type: "button", class: "button small quiet", onclick: () => returnToAutomatic(m) }, "Return to automatic")),
          ),
        )
      : none("None yet: every mapping comes from matching names.")),
    ...moreOf("manual"),
  );
  $("ignored").replaceChildren(
    ...(state.ignored === null
      ? [h("li", { class: "none-left" }, "Loading…")]
      : state.ignored.length
      ? state.ignored.map((o) =>
          h(
            "li",
            { "data-id": o.rmm_organization_id },
            h("div", { class: "mapping-names" }, h("strong", {}, o.name), h("span", { class: "why" }, `“${o.reason}”, by ${personOf(o.updated_by)}, ${ago(o.updated_at)}`)),
            adminButton(h("button", { type: "button", class: "button small quiet", "aria-label": `Restore ${o.name}`, onclick: (event) => restoreOrganization(o, event.currentTarget) }, "Restore")),
          ),
        )
      : [h("li", { class: "none-left" }, "None: every RMM organization counts.")]),
  );
}

function personOf(by) {
  return by?.name ?? by?.subject ?? "someone";
}

async function rejectSuggestion(s, button) {
  setBusy(button, true, "Rejecting…");
  try {
    await api("PUT", `rejected-suggestions/${encodeURIComponent(s.pax8_company_id)}/${encodeURIComponent(s.rmm_organization_id)}`, {});
    clearError();
    notify(`Rejected: ${s.rmm_organization_name} will not be suggested for ${s.client} again.`);
    await loadMappings();
  } catch (error) {
    showError("Could not reject the suggestion", error);
    renderMappings();
  }
}

// An RMM organization's "not billable" form: why, then Ignore.
function ignoreForm(entry) {
  const reason = h("input", { type: "text", "aria-label": `Why ${entry.name} is not billable`, placeholder: "Why it is not billable (required)", maxlength: "1000", required: "" });
  const save = h("button", { type: "submit", class: "button small" }, "Ignore");
  const cancel = h("button", { type: "button", class: "button small quiet", onclick: () => { state.ignoring = null; renderMappings(); } }, "Cancel");
  const form = h("form", { class: "ignore-form" }, reason, save, cancel);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setBusy(save, true, "Saving…");
    try {
      await api("PUT", `ignored-organizations/${encodeURIComponent(entry.id)}`, { reason: reason.value });
      state.ignoring = null;
      clearError();
      notify(`${entry.name} is ignored: it is in no coverage and no unmapped list from the next snapshot on.`);
      await loadMappings();
    } catch (error) {
      showError("Could not ignore the organization", error);
      setBusy(save, false);
    }
  });
  return form;
}

async function restoreOrganization(organization, button) {
  setBusy(button, true, "Restoring…");
  try {
    await api("DELETE", `ignored-organizations/${encodeURIComponent(organization.rmm_organization_id)}`);
    clearError();
    notify(`${organization.name} counts again from the next snapshot on.`);
    await loadMappings();
  } catch (error) {
    showError("Could not restore the organization", error);
    renderMappings();
  }
}

// ------------------------------------------------------------------ exclusion rules

async function loadRules() {
  try {
    const answer = await api("GET", "rules");
    state.failed.delete("Could not load the rules");
    state.rules = answer.items;
    renderRules();
  } catch (error) {
    $("rules-loading").textContent = "The rules could not be loaded.";
    showError("Could not load the rules", error, loadRules);
  }
}

function ruleWords(rule) {
  const parts = [
    rule.name_patterns.length ? `names ${rule.name_patterns.join(", ")}` : null,
    rule.roles.length ? `roles ${rule.roles.join(", ")}` : null,
    rule.tags.length ? `tags ${rule.tags.join(", ")}` : null,
  ].filter(Boolean);
  const coverages = state.snapshot?.coverages ?? [];
  const where = rule.coverage_ids.length
    ? rule.coverage_ids.map((id) => coverages.find((c) => c.id === id)?.name ?? id).join(", ")
    : "every coverage";
  return `Leaves out devices with ${parts.join(" or ")}, in ${where}.`;
}

function renderRules() {
  $("rules-loading").hidden = true;
  const select = $("rule-coverage");
  const chosen = select.value;
  select.replaceChildren(
    h("option", { value: "" }, "Every coverage"),
    ...(state.snapshot?.coverages ?? []).map((c) => h("option", { value: c.id }, c.name)),
  );
  select.value = chosen;
  $("rule-save").disabled = !state.canChange;
  $("rule-save").title = state.canChange ? "" : ADMIN_ONLY;
  $("rules").replaceChildren(
    ...(state.rules.length
      ? state.rules.map((rule) =>
          h(
            "li",
            { "data-name": rule.name },
            h(
              "div",
              { class: "mapping-names" },
              h("strong", {}, rule.name),
              h("span", { class: "why" }, ruleWords(rule)),
              h("span", { class: "why" }, `${rule.reason ? `“${rule.reason}”, ` : ""}by ${personOf(rule.updated_by)}, ${ago(rule.updated_at)}`),
            ),
            adminButton(h("button", { type: "button", class: "button small quiet", "aria-label": `Remove the rule ${rule.name}`, onclick: (event) => removeRule(rule, event.currentTarget) }, "Remove")),
          ),
        )
      : [h("li", { class: "none-left" }, "None: every device of a covered class counts.")]),
  );
}

function listed(text) {
  return text.split(",").map((part) => part.trim()).filter(Boolean);
}

async function saveRule(event) {
  event.preventDefault();
  const name = $("rule-name").value.trim();
  const body = {
    name_patterns: listed($("rule-patterns").value),
    roles: listed($("rule-roles").value),
    tags: listed($("rule-tags").value),
    coverage_ids: $("rule-coverage").value ? [$("rule-coverage").value] : [],
  };
  if ($("rule-reason").value.trim()) body.reason = $("rule-reason").value.trim();
  const button = $("rule-save");
  setBusy(button, true, "Saving…");
  try {
    await api("PUT", `rules/${encodeURIComponent(name)}`, body);
    clearError();
    notify(`Rule “${name}” saved. It applies from the next snapshot on.`);
    $("rule-form").reset();
    await loadRules();
  } catch (error) {
    showError("Could not save the rule", error);
  } finally {
    setBusy(button, false);
  }
}

async function removeRule(rule, button) {
  setBusy(button, true, "Removing…");
  try {
    await api("DELETE", `rules/${encodeURIComponent(rule.name)}`);
    clearError();
    notify(`Rule “${rule.name}” removed. It applies from the next snapshot on.`);
    await loadRules();
  } catch (error) {
    showError("Could not remove the rule", error);
    renderRules();
  }
}

// ------------------------------------------------------------------ the audit log

async function loadAudit(more = false) {
  const audit = state.audit;
  const request = ++audit.request;
  const query = new URLSearchParams({ limit: "50" });
  if (audit.kind) query.set("kind", audit.kind);
  if (more && audit.next) query.set("cursor", audit.next);
  if (!audit.loaded) $("audit-loading").hidden = false;
  try {
    const page = await api("GET", `audit?${query}`);
    if (request !== audit.request) return;
    state.failed.delete("Could not load the audit log");
    audit.entries = more ? [...audit.entries, ...page.items] : page.items;
    audit.next = page.next_cursor;
    audit.loaded = true;
    renderAudit();
  } catch (error) {
    if (request !== audit.request) return;
    $("audit-loading").textContent = "The audit log could not be loaded.";
    showError("Could not load the audit log", error, () => loadAudit(more));
  }
}

function renderAudit() {
  const { entries, next } = state.audit;
  $("audit-loading").hidden = true;
  $("audit-table").hidden = entries.length === 0;
  $("audit-empty").hidden = entries.length > 0;
  $("audit-empty").textContent = state.audit.kind ? "No changes of this kind recorded yet." : "No changes recorded yet.";
  $("audit-rows").replaceChildren(
    ...entries.map((e) =>
      h(
        "tr",
        { "data-kind": e.kind },
        h("td", {}, timeElement(e.at, dateTime.format(new Date(e.at)))),
        h("td", {}, personOf(e.by)),
        h("td", {}, e.what),
        h("td", {}, e.reason ?? ""),
      ),
    ),
  );
  $("audit-more").hidden = !next;
}

function moreOf(list) {
  if (!state.mappings.next[list]) return [];
  return [
    h(
      "li",
      { class: "more" },
      h("button", { type: "button", class: "button small quiet", onclick: () => loadMoreMappings(list) }, `Show more (${state.mappings[list].length} shown so far)`),
    ),
  ];
}

// One unmapped company or organization, with a Choose button that opens the one picker for it.
function unmappedEntry(entry) {
  const open = state.picking?.kind === entry.kind && state.picking.id === entry.id;
  const ignoring = entry.kind === "rmm" && state.ignoring === entry.id;
  const ignore =
    entry.kind === "rmm"
      ? adminButton(
          h(
            "button",
            {
              type: "button",
              class: "button small quiet",
              "aria-expanded": String(ignoring),
              "aria-label": `Ignore ${entry.name}: not billable`,
              onclick: () => {
                state.ignoring = ignoring ? null : entry.id;
                renderMappings();
                if (!ignoring) document.querySelector(".ignore-form input")?.focus();
              },
            },
            ignoring ? "Close" : "Ignore…",
          ),
        )
      : null;
  const side = entry.kind === "pax8" ? "Pax8" : "RMM";
  const choose = adminButton(
    h(
      "button",
      {
        type: "button",
        class: "button small quiet",
        "aria-expanded": String(open),
        "aria-label": entry.kind === "pax8" ? `Choose the RMM organization for ${entry.name}` : `Choose the Pax8 company for ${entry.name}`,
        onclick: () => togglePicker(entry),
      },
      open ? "Close" : "Choose…",
    ),
  );
  return h(
    "li",
    { "data-kind": entry.kind, "data-id": entry.id },
    h("div", { class: "mapping-names" }, h("span", { class: "side" }, `${side} `), h("strong", {}, entry.name)),
    choose,
    ignore,
    open ? picker(entry) : null,
    ignoring ? ignoreForm(entry) : null,
  );
}

function togglePicker(entry) {
  const open = state.picking?.kind === entry.kind && state.picking.id === entry.id;
  state.picking = open ? null : { ...entry, search: "" };
  renderMappings();
  if (!open) document.querySelector(".picker input")?.focus();
}

// The picker: a search over what the entry may be mapped to, filled from the API as it is typed,
// with the entry's own suggestions first.
function picker(entry) {
  const label = entry.kind === "pax8" ? `RMM organization for ${entry.name}` : `Pax8 company for ${entry.name}`;
  const input = h("input", {
    type: "search",
    "aria-label": `Search: ${label}`,
    placeholder: entry.kind === "pax8" ? "Organization name" : "Company name",
    autocomplete: "off",
    value: state.picking.search,
  });
  const options = h("ul", { class: "choices", role: "list", "aria-label": label, "aria-busy": "true" });
  const told = h("p", { class: "visually-hidden picker-count", "aria-live": "polite" });
  let typing = null;
  input.addEventListener("input", () => {
    state.picking.search = input.value;
    clearTimeout(typing);
    typing = setTimeout(() => fillChoices(entry, options, input.value, told), SEARCH_DELAY_MS);
  });
  fillChoices(entry, options, state.picking.search, told);
  const box = h("div", { class: "picker" }, input, told, options);
  // Keyboard: the arrows move from the search to the choices and between them; Escape closes.
  box.addEventListener("keydown", (event) => {
    const buttons = [...options.querySelectorAll("button.choice:not([disabled])")];
    const at = buttons.indexOf(document.activeElement);
    if (event.key === "Escape") {
      event.preventDefault();
      togglePicker(entry);
      document.querySelector(`li[data-kind="${entry.kind}"][data-id="${CSS.escape(entry.id)}"] button[aria-expanded]`)?.focus();
    } else if (event.key === "ArrowDown" && buttons.length) {
      event.preventDefault();
      buttons[Math.min(at + 1, buttons.length - 1)].focus();
    } else if (event.key === "ArrowUp" && at >= 0) {
      event.preventDefault();
      (at === 0 ? input : buttons[at - 1]).focus();
    }
  });
  return box;
}

async function fillChoices(entry, options, search, told) {
  const own = new URLSearchParams({ list: "suggestions", limit: String(CHOICES), [entry.kind === "pax8" ? "company" : "organization"]: entry.id });
  const found = new URLSearchParams({ list: entry.kind === "pax8" ? "unmapped_rmm" : "companies", limit: String(CHOICES) });
  if (search.trim()) found.set("q", search.trim());
  options.setAttribute("aria-busy", "true");
  try {
    const [suggested, listed] = await Promise.all([
      search.trim() ? Promise.resolve({ suggestions: [] }) : api("GET", `mappings?${own}`),
      api("GET", `mappings?${found}`),
    ]);
    if (state.picking?.id !== entry.id || state.picking.search !== search) return; // a newer search
    const choices = new Map();
    for (const s of suggested.suggestions) {
      const [id, text] = entry.kind === "pax8" ? [s.rmm_organization_id, s.rmm_organization_name] : [s.pax8_company_id, s.client];
      choices.set(id, { id, text, note: `suggested, ${Math.round(s.score)}% similar` });
    }
    for (const item of listed[entry.kind === "pax8" ? "unmapped_rmm" : "companies"]) {
      const [id, text] = entry.kind === "pax8" ? [item.rmm_organization_id, item.name] : [item.pax8_company_id, item.client];
      if (!choices.has(id)) choices.set(id, { id, text, note: "" });
    }
    options.replaceChildren(
      ...(choices.size
        ? [...choices.values()].map((choice) =>
            h(
              "li",
              {},
              adminButton(
                h(
                  "button",
                  {
                    type: "button",
                    class: "choice",
                    onclick: (event) => {
                      setBusy(event.currentTarget, true, "Saving…");
                      if (entry.kind === "pax8") accept(entry.id, choice.id, `Saved: ${choice.text} now counts for ${entry.name}.`);
                      else accept(choice.id, entry.id, `Saved: ${entry.name} now counts for ${choice.text}.`);
                    },
                  },
                  h("span", {}, choice.text),
                  choice.note ? h("span", { class: "note" }, choice.note) : null,
                ),
              ),
            ),
          )
        : [h("li", { class: "none-left" }, search.trim() ? `Nothing matches “${search.trim()}”.` : "Nothing left to choose from.")]),
      ...(listed.next[entry.kind === "pax8" ? "unmapped_rmm" : "companies"] ? [h("li", { class: "none-left" }, "Type to narrow the list.")] : []),
    );
    told.textContent = choices.size ? `${plural(choices.size, "choice", "choices")}; the down arrow moves to them.` : "No choices.";
  } catch (error) {
    showError("Could not load the choices", error, () => fillChoices(entry, options, search, told));
  } finally {
    options.removeAttribute("aria-busy");
  }
}

// Map one organization to a company, keeping the organizations the company already has.
async function accept(companyId, organizationId, done) {
  let current = [];
  try {
    const found = await api("GET", `mappings?${new URLSearchParams({ list: "mappings", company: companyId, limit: "1" })}`);
    current = found.mappings[0]?.rmm_organization_ids ?? [];
  } catch (error) {
    showError("Could not read the company's mapping", error);
    renderMappings();
    return;
  }
  state.picking = null;
  await saveMapping(companyId, [...new Set([...current, organizationId])], done);
}

// ------------------------------------------------------------------ start

function bind() {
  $("take-snapshot").addEventListener("click", takeSnapshot);
  $("empty-take-snapshot").addEventListener("click", takeSnapshot);
  $("sync-now").addEventListener("click", syncNow);
  $("sync-and-snapshot").addEventListener("click", syncAndSnapshot);
  $("export").addEventListener("click", exportReport);
  $("export-evidence").addEventListener("click", (event) => exportEvidence(event.currentTarget, null));
  $("error-dismiss").addEventListener("click", () => {
    state.failed.clear();
    clearError();
  });
  $("error-retry").addEventListener("click", retryFailed);
  $("clear-filter").addEventListener("click", () => toggleFilter(state.filter));
  $("unmapped-filter").addEventListener("click", () => toggleFilter("unmapped"));
  $("set-aside-filter").addEventListener("click", () => toggleFilter("set_aside"));
  for (const card of document.querySelectorAll(".card")) {
    card.addEventListener("click", () => toggleFilter(card.dataset.status));
  }
  for (const th of document.querySelectorAll("#clients th[data-key]")) {
    th.querySelector("button").addEventListener("click", () => cycleSort(th.dataset.key));
  }
  let typing = null;
  $("change-filter").addEventListener("change", (event) => setChangeFilter(event.target.value));
  $("decision-filter").addEventListener("change", (event) => {
    state.decision = event.target.value;
    state.expanded.clear();
    loadRows();
  });
  $("audit-kind").addEventListener("change", (event) => {
    state.audit.kind = event.target.value;
    loadAudit();
  });
  $("audit-more").addEventListener("click", () => loadAudit(true));
  $("rule-form").addEventListener("submit", saveRule);
  $("export-audit").addEventListener("click", (event) => {
    if (state.snapshot) downloadExport(event.currentTarget, "audit/export", "the audit log", ["change", "changes"]);
  });
  $("search").addEventListener("input", (event) => {
    state.search = event.target.value;
    state.expanded.clear();
    clearTimeout(typing);
    typing = setTimeout(loadRows, SEARCH_DELAY_MS);
  });
  let searchingMappings = null;
  $("mapping-search").addEventListener("input", (event) => {
    state.mappingSearch = event.target.value;
    clearTimeout(searchingMappings);
    searchingMappings = setTimeout(loadMappings, SEARCH_DELAY_MS);
  });
  // From the page asked for last, not the one on screen: two quick clicks on Next go two pages on.
  $("pager-previous").addEventListener("click", () => {
    const from = state.rowsTarget ?? state.rows.start;
    if (from > 0) loadRows(Math.max(0, from - state.rowsPage));
  });
  $("pager-next").addEventListener("click", () => {
    const from = state.rowsTarget ?? state.rows.start;
    if (from + state.rowsPage < state.rows.total) loadRows(from + state.rowsPage);
  });
  $("snapshot-picker").addEventListener("change", (event) => {
    loadSnapshot(event.target.value, state.coverageId, true);
  });
  $("back-to-latest").addEventListener("click", () => loadSnapshot("latest", state.coverageId, true));
  $("older-snapshots").addEventListener("click", () => loadHistory(true));
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-view]");
    if (!link) return;
    event.preventDefault();
    goToView(link.dataset.view);
  });
  window.addEventListener("popstate", followAddress);
  $("sign-out").addEventListener("click", () => signOut());
  $("sign-in").addEventListener("click", () => signInAgain());
}

function showSignedOut(message) {
  $("loading").hidden = true;
  $("main").hidden = true;
  document.querySelector(".topbar .actions").hidden = true;
  document.querySelector(".topbar .views").hidden = true;
  $("signed-out").hidden = false;
  $("signed-out-text").textContent = message;
}

async function start() {
  bind();
  let session;
  try {
    session = await signIn();
  } catch (error) {
    showSignedOut(error instanceof SignInError ? `Could not sign you in: ${error.message}.` : String(error));
    return;
  }
  state.signIn = session.mode === "off" ? "off" : "oidc";
  if (session.mode === "signed-out") {
    showSignedOut("You are signed out.");
    return;
  }
  try {
    showWho(await api("GET", "me"));
  } catch (error) {
    showError("Could not tell who you are", error);
    return;
  }
  const wanted = readAddress();
  showView(wanted.view);
  if (wanted.view !== "unmapped") loadMappings(); // the count of unmapped clients in the menu
  await Promise.all([
    loadSnapshot(wanted.snapshot ?? "latest", wanted.coverage),
    loadHistory(),
    loadCurrent(),
    resumeRunningSync(),
  ]);
  prefetchMappings(); // after the first rows: it must not delay them
  setInterval(renderFreshness, FRESHNESS_REFRESH_MS);
}

start();
