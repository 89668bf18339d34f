// The map page: sign in, list the sources and projects the user can see, and show a
// source's vector tiles (or a project's layers) from the REST API's tile routes.
"use strict";

const API = "/api/v1";
const TILE_LAYER = "core_geometry"; // the layer inside every tile (migration 0010)
const TOKEN_KEY = "maps-platform-token";
// Each geometry kind's default look; a project layer's `style` overrides it.
const DEFAULT_STYLE = { color: "#d62728", outline: "#ffffff", opacity: 0.6, width: 2, radius: 5 };
const KIND_COLORS = { point: "#d62728", line: "#1f5fbf", polygon: "#2e8b57" };

let token = sessionStorage.getItem(TOKEN_KEY);
const $ = (id) => document.getElementById(id);

// MapLibre asks for TileJSON and tiles itself: give those requests our bearer token.
const map = new maplibregl.Map({
  container: "map",
  style: {
    version: 8,
    sources: {},
    layers: [{ id: "background", type: "background", paint: { "background-color": "#eef0f2" } }],
  },
  center: [0, 20],
  zoom: 1,
  attributionControl: false,
  transformRequest: (url) =>
    token && new URL(url, location.href).origin === location.origin
      ? { url, headers: { Authorization: `Bearer ${token}` } }
      : { url },
});
map.addControl(new maplibregl.NavigationControl(), "top-right");
window.mapsMap = map; // for the browser test and the console

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path.startsWith("/") ? path : `${API}/${path}`, { ...options, headers });
  if (response.status === 401 && path !== `${API}/auth/login`) {
    signedOut("Your session has ended: sign in again.");
    throw new Error("not signed in");
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(body.detail || `${response.status} ${response.statusText}`);
  }
  return response.status === 204 ? null : response.json();
}

function status(text) {
  $("status").textContent = text;
}

// ---- signing in and out

$("signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("signin-error").textContent = "";
  const form = new FormData(event.target);
  const response = await fetch(`${API}/auth/login`, { method: "POST", body: new URLSearchParams(form) });
  if (!response.ok) {
    $("signin-error").textContent = "Wrong email or password.";
    return;
  }
  token = (await response.json()).access_token;
  sessionStorage.setItem(TOKEN_KEY, token);
  await signedIn();
});

$("signout").addEventListener("click", async () => {
  await api(`${API}/auth/logout`, { method: "POST" }).catch(() => null);
  signedOut("");
});

function signedOut(message) {
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  clearMap();
  $("browser").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = message;
}

async function signedIn() {
  const me = await api("user-profile/");
  $("who").textContent = me.email;
  $("signin").hidden = true;
  $("browser").hidden = false;
  const [sources, projects] = await Promise.all([
    api("sources/?page_size=1000&ordering=name"),
    api("projects/?page_size=1000&ordering=name"),
  ]);
  fillList($("sources"), sources.results, (s) => `${s.name} (${s.feature_count})`, showSource);
  fillList($("projects"), projects.results, (p) => p.name, showProject);
  status(sources.count ? "Choose a source or a project." : "No source yet: import one.");
}

function fillList(list, items, label, open) {
  list.replaceChildren(
    ...items.map((item) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = label(item);
      button.dataset.id = item.id;
      button.addEventListener("click", async () => {
        document.querySelectorAll(".choices button").forEach((b) => b.classList.remove("active"));
        button.classList.add("active");
        try {
          await open(item);
        } catch (error) {
          status(`Could not show ${item.name}: ${error.message}`);
        }
      });
      li.append(button);
      return li;
    }),
  );
}

// ---- what is on the map

let shown = []; // [{source, layers: [ids]}]

function clearMap() {
  for (const { source, layers } of shown) {
    layers.forEach((id) => map.getLayer(id) && map.removeLayer(id));
    if (map.getSource(source)) map.removeSource(source);
  }
  shown = [];
}

// Points, lines and polygons of one tile source, each kind styled on its own.
function addLayers(sourceId, prefix, style, visible) {
  const look = { ...DEFAULT_STYLE, ...style };
  const color = (kind) => style.color || KIND_COLORS[kind];
  const visibility = visible ? "visible" : "none";
  const kind = (types) => ["in", ["geometry-type"], ["literal", types]];
  const layers = [
    {
      id: `${prefix}-polygons`,
      type: "fill",
      filter: kind(["Polygon", "MultiPolygon"]),
      paint: { "fill-color": color("polygon"), "fill-opacity": look.opacity, "fill-outline-color": "#1b4d33" },
    },
    {
      id: `${prefix}-lines`,
      type: "line",
      filter: kind(["LineString", "MultiLineString"]),
      paint: { "line-color": color("line"), "line-width": look.width },
      layout: { "line-cap": "round", "line-join": "round" },
    },
    {
      id: `${prefix}-points`,
      type: "circle",
      filter: kind(["Point", "MultiPoint"]),
      paint: {
        "circle-color": color("point"),
        "circle-radius": look.radius,
        "circle-stroke-color": look.outline,
        "circle-stroke-width": 1,
      },
    },
  ];
  for (const layer of layers) {
    map.addLayer({ ...layer, source: sourceId, "source-layer": TILE_LAYER, layout: { ...(layer.layout || {}), visibility } });
  }
  return layers.map((layer) => layer.id);
}

async function showSource(source) {
  clearMap();
  const tilejson = await api(`${API}/tiles/${source.id}.json`);
  const sourceId = `source-${source.id}`;
  map.addSource(sourceId, { type: "vector", tiles: tilejson.tiles, minzoom: 0, maxzoom: tilejson.maxzoom });
  shown.push({ source: sourceId, layers: addLayers(sourceId, sourceId, {}, true) });
  fit(tilejson.bounds);
  status(`${source.name}: ${source.feature_count} features.`);
}

async function showProject(project) {
  clearMap();
  const layers = await Promise.all(project.layers.map((id) => api(`layers/${id}/`)));
  // `layers` is in the project's order, bottom first: add them in that order.
  let bounds = null;
  for (const layer of layers) {
    if (layer.layer_type !== "vector") continue;
    const tilejson = await api(layer.tile_url);
    const sourceId = `layer-${layer.id}`;
    map.addSource(sourceId, { type: "vector", tiles: tilejson.tiles, maxzoom: tilejson.maxzoom });
    shown.push({ source: sourceId, layers: addLayers(sourceId, sourceId, layer.style || {}, layer.is_visible) });
    if (layer.is_visible) bounds = union(bounds, tilejson.bounds);
  }
  if (project.center && project.zoom != null) {
    map.jumpTo({ center: project.center.coordinates, zoom: project.zoom });
  } else if (bounds) {
    fit(bounds);
  }
  status(`${project.name}: ${layers.length} layers.`);
}

function union(a, b) {
  if (!a) return b;
  return [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[2], b[2]), Math.max(a[3], b[3])];
}

function fit(bounds) {
  if (!bounds) return;
  map.fitBounds([[bounds[0], bounds[1]], [bounds[2], bounds[3]]], { padding: 40, maxZoom: 16, duration: 0 });
}

// ---- a popup with the clicked feature's attributes

map.on("click", (event) => {
  const ids = shown.flatMap((s) => s.layers);
  const [feature] = map.queryRenderedFeatures(event.point, { layers: ids });
  if (!feature) return;
  const table = document.createElement("table");
  table.className = "popup-table";
  for (const [key, value] of Object.entries(feature.properties)) {
    const row = table.insertRow();
    const th = document.createElement("th");
    th.textContent = key;
    row.append(th);
    row.insertCell().textContent = String(value);
  }
  new maplibregl.Popup({ maxWidth: "320px" }).setLngLat(event.lngLat).setDOMContent(table).addTo(map);
});

if (token) signedIn().catch(() => signedOut(""));
