/* genrekit page: upload or URL -> POST /api/predict -> bars + per-segment timeline.
   Plain JS, no dependencies, no build step. Charts are drawn as SVG by this file. */
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  // Genre colours come from the server (GET api/palette, genrekit.palette): the same table the
  // timeline PNGs use, so a genre has one colour everywhere. Unknown names get a neutral grey.
  let palette = {};
  const FALLBACK = "#98a2b3";
  let labels = [];
  let config = null;
  let busy = false;
  let timer = null;
  let lastResult = null;

  function colour(genre) {
    return palette[genre] || palette[String(genre).toLowerCase()] || FALLBACK;
  }
  // Whole percents, as everywhere on the page ("80%"); "<1%" rather than a misleading "0%".
  const pct = (p) => (p > 0 && p < 0.005 ? "<1%" : Math.round(100 * p) + "%");
  function clock(s) {
    s = Math.max(0, Math.round(s));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    const mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(sec).padStart(2, "0");
  }
  function el(tag, attrs, parent) {
    const e = document.createElementNS(SVG, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  const mb = (n) => (n / (1024 * 1024)).toFixed(n >= 10 * 1024 * 1024 ? 0 : 1) + " MB";

  // ------------------------------------------------------------------------------ start-up
  fetch("api/model").then((r) => r.json()).then((card) => {
    labels = card.labels || [];
    $("model-name").textContent = "model: " + (card.name || card.format || "?") +
      (labels.length ? " · " + labels.length + " genres" : "");
  }).catch(() => { $("model-name").textContent = "model: unavailable"; });

  fetch("api/palette").then((r) => r.json()).then((p) => {
    palette = (p && p.colours) || {};
    if (lastResult && !$("result").hidden) show(lastResult);  // a result that beat the palette
  }).catch(() => {});

  fetch("api/config").then((r) => r.json()).then((c) => {
    config = c;
    const mins = c.max_duration_s >= 120 ? Math.round(c.max_duration_s / 60) + " min" : c.max_duration_s + " s";
    $("limits").textContent = "Up to " + mb(c.max_upload_bytes) + " and " + mins + " of audio." +
      (c.allow_urls ? "" : " Links are turned off on this server.");
    if (!c.allow_urls) {
      $("url-input").disabled = true; $("url-button").disabled = true;
      $("url-input").placeholder = "Links are turned off on this server (start it with --allow-urls)";
    }
  }).catch(() => {});

  // ------------------------------------------------------------------------------ input
  const dz = $("dropzone");
  dz.addEventListener("click", (e) => { if (e.target.tagName !== "LABEL") $("file-input").click(); });
  dz.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("file-input").click(); } });
  ["dragenter", "dragover"].forEach((t) => dz.addEventListener(t, (e) => { e.preventDefault(); dz.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => dz.addEventListener(t, (e) => { e.preventDefault(); dz.classList.remove("over"); }));
  dz.addEventListener("drop", (e) => { const f = e.dataTransfer.files[0]; if (f) upload(f); });
  // Dropping a file anywhere else must not navigate away from the page.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
  $("file-input").addEventListener("change", (e) => { const f = e.target.files[0]; if (f) upload(f); e.target.value = ""; });
  $("url-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const url = $("url-input").value.trim();
    if (url) analyseUrl(url);
  });

  // ------------------------------------------------------------------------------ requests
  function begin(text) {
    busy = true;
    document.body.classList.add("busy");
    $("url-button").disabled = true;
    $("error").hidden = true;
    $("result").hidden = true;
    $("progress").hidden = false;
    setStatus(text, null);
    const t0 = performance.now();
    timer = setInterval(() => { $("elapsed").textContent = ((performance.now() - t0) / 1000).toFixed(0) + " s"; }, 250);
    $("elapsed").textContent = "0 s";
  }
  function end() {
    busy = false;
    document.body.classList.remove("busy");
    $("url-button").disabled = !(config && config.allow_urls);
    $("progress").hidden = true;
    clearInterval(timer);
  }
  function setStatus(text, fraction) {
    $("status").textContent = text;
    const bar = $("progress-bar");
    if (fraction === null) { bar.classList.add("indeterminate"); bar.style.width = ""; }
    else { bar.classList.remove("indeterminate"); bar.style.width = (100 * fraction).toFixed(1) + "%"; }
  }
  function fail(status, detail) {
    end();
    const box = $("error");
    box.textContent = "";
    const head = document.createElement("strong");
    head.textContent = status === 0 ? "Could not reach the server" : "Could not analyse this (" + status + ")";
    box.appendChild(head);
    box.appendChild(document.createTextNode(detail || ""));
    box.hidden = false;
  }
  function detailOf(text, status) {
    try { const j = JSON.parse(text); if (j && j.detail) return typeof j.detail === "string" ? j.detail : JSON.stringify(j.detail); } catch (e) { /* not JSON */ }
    return text ? text.slice(0, 300) : "HTTP " + status;
  }

  function upload(file) {
    if (busy) return;
    if (config && file.size > config.max_upload_bytes) {
      fail(413, file.name + " is " + mb(file.size) + "; the limit is " + mb(config.max_upload_bytes) + ".");
      return;
    }
    begin("Uploading " + file.name + "…");
    const form = new FormData();
    form.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "api/predict");
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) setStatus("Uploading " + file.name + "… " + Math.round(100 * e.loaded / e.total) + "%", e.loaded / e.total);
    };
    xhr.upload.onload = () => setStatus("Analysing " + file.name + "…", null);
    xhr.onload = () => handle(xhr.status, xhr.responseText);
    xhr.onerror = () => fail(0, "The connection failed. Is the server still running?");
    xhr.send(form);
  }

  function analyseUrl(url) {
    if (busy) return;
    begin("Fetching and analysing " + url + "…");
    fetch("api/predict", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ url: url }) })
      .then((r) => r.text().then((t) => handle(r.status, t)))
      .catch(() => fail(0, "The connection failed. Is the server still running?"));
  }

  function handle(status, text) {
    if (status !== 200) { fail(status, detailOf(text, status)); return; }
    let res;
    try { res = JSON.parse(text); } catch (e) { fail(status, "The server sent something that is not JSON."); return; }
    end();
    show(res);
  }

  // ------------------------------------------------------------------------------ results
  function show(res) {
    lastResult = res;
    if (!labels.length) labels = Object.keys(res.probabilities || {});
    $("input-name").textContent = res.input;
    // The heading is dark text (readable for every genre); the genre's colour is the swatch beside it.
    $("genre").textContent = res.genre;
    $("genre-swatch").style.background = colour(res.genre);
    $("confidence").textContent = pct(res.confidence);
    showOpenSet(res);
    const n = (res.segments || []).length;
    $("meta").textContent = clock(res.duration_s) + " long · " + n + " segment" + (n === 1 ? "" : "s") +
      (res.model ? " · model " + res.model : "");
    drawBars(res.probabilities || {});
    $("result").hidden = false;  // visible before drawing so the SVG has a width
    drawTimeline(res);
    $("heads-note").textContent = headsNote(res);
    drawTags(res.tags);
    if ($("result").scrollIntoView) $("result").scrollIntoView({ behavior: "smooth", block: "nearest" });
    const json = JSON.stringify(res, null, 2);
    $("raw-json").textContent = json;
    $("download").href = URL.createObjectURL(new Blob([json], { type: "application/json" }));
  }

  // The open-set answer ("other"): say plainly that the track is none of the model's genres and
  // which one it is closest to. Fields are read defensively: older servers do not send them.
  function showOpenSet(res) {
    const box = $("open-set");
    const nearest = typeof res.nearest === "string" && res.nearest ? res.nearest : null;
    const style = typeof res.style === "string" && res.style ? res.style : null;
    const inSet = typeof res.in_set === "number" ? res.in_set : null;
    $("confidence-label").textContent = "confidence";
    if (res.genre !== "other") { box.hidden = true; box.textContent = ""; return; }
    const known = labels.filter((g) => g !== "other").length;
    let text = "Not one of the " + (known || "") + (known ? " " : "") + "genres this model knows";
    if (nearest) text += "; closest is " + nearest +
      (res.probabilities && typeof res.probabilities[nearest] === "number" ? " (" + pct(res.probabilities[nearest]) + ")" : "");
    if (style) text += "; sounds like " + style;
    text += ".";
    if (inSet !== null) text += " Chance it is one of them: " + pct(inSet) + ".";
    box.textContent = text;
    box.hidden = false;
    // for "other" the big number is the certainty of "other" itself (1 - in_set), not the nearest genre's
    $("confidence-label").textContent = "sure it is none of them";
  }

  // The track's genre is judged on the whole track at once (for the default, on the mean of its
  // windows' outputs), the timeline one window at a time. When the segments do not average to the track's
  // probabilities, say so, and name the genre the segments lean to when it differs.
  function headsNote(res) {
    const segs = (res.segments || []).filter((s) => s && s.probabilities);
    const track = res.probabilities || {};
    if (!segs.length) return "";
    const mean = {};
    for (const s of segs) for (const k in s.probabilities) mean[k] = (mean[k] || 0) + s.probabilities[k] / segs.length;
    const keys = Object.keys(track);
    const gapOf = (k) => Math.abs((mean[k] || 0) - track[k]);
    const widest = keys.sort((a, b) => gapOf(b) - gapOf(a))[0];
    if (!widest || gapOf(widest) < 0.02) return "The track's genre above is the average of these segments.";
    let note = "The genre above judges the whole track at once; this chart judges one window at a time, " +
      "so the two can disagree.";
    const lean = Object.keys(mean).sort((a, b) => mean[b] - mean[a])[0];
    if (lean && lean !== res.genre && res.genre !== "other") {
      note += " Here the segments lean to " + lean + " (" + pct(mean[lean]) + " on average), the whole track to " + res.genre + ".";
    } else {
      note += " Here " + widest + " is " + pct(track[widest]) + " for the whole track and " +
        pct(mean[widest] || 0) + " on average over the segments.";
    }
    return note;
  }

  function drawBars(probs) {
    const box = $("bars");
    box.textContent = "";
    const top = Object.entries(probs).sort((a, b) => b[1] - a[1]).slice(0, 5);
    for (const [g, p] of top) {
      const row = document.createElement("div");
      row.className = "bar-row";
      row.innerHTML = '<span class="bar-label"></span><div class="bar-track"><div class="bar-fill"></div></div><span class="bar-value"></span>';
      row.querySelector(".bar-label").textContent = g;
      const fill = row.querySelector(".bar-fill");
      fill.style.width = Math.max(0.5, 100 * p).toFixed(1) + "%";
      fill.style.background = colour(g);
      row.querySelector(".bar-value").textContent = pct(p);
      box.appendChild(row);
    }
  }

  function drawTimeline(res) {
    const svg = $("timeline");
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const segs = res.segments || [];
    const W = Math.max(320, svg.clientWidth || 800), H = svg.clientHeight || 220;
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    const m = { l: 40, r: 8, t: 8, b: 24 };
    const iw = W - m.l - m.r, ih = H - m.t - m.b;
    const t1 = Math.max(res.duration_s || 0, segs.length ? segs[segs.length - 1].end_s : 0, 1e-6);
    const x = (t) => m.l + (t / t1) * iw;
    const y = (p) => m.t + (1 - p) * ih;
    // Stacking order: the track's most probable genre at the bottom, so its band reads as a floor.
    const order = Object.entries(res.probabilities || {}).sort((a, b) => b[1] - a[1]).map((e) => e[0]);

    const grid = el("g", { class: "grid" }, svg);
    const axis = el("g", { class: "axis" }, svg);
    for (const p of [0, 0.5, 1]) {
      el("line", { x1: m.l, x2: W - m.r, y1: y(p), y2: y(p) }, grid);
      el("text", { x: m.l - 6, y: y(p) + 4, "text-anchor": "end" }, axis).textContent = (100 * p) + "%";
    }
    const step = [5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600].find((s) => t1 / s <= 8) || 7200;
    for (let t = 0; t <= t1 + 1e-9; t += step) {
      el("line", { x1: x(t), x2: x(t), y1: y(0), y2: y(0) + 4 }, axis);
      const anchor = t === 0 ? "start" : (x(t) > W - m.r - 16 ? "end" : "middle");
      el("text", { x: x(t), y: H - 6, "text-anchor": anchor }, axis).textContent = clock(t);
    }

    const marks = el("g", { class: "marks" }, svg);
    const used = new Set();
    segs.forEach((s, i) => {
      const next = i + 1 < segs.length ? segs[i + 1].start_s : s.end_s;
      const a = x(s.start_s), b = x(Math.max(next, s.start_s) > s.start_s ? Math.min(next, s.end_s) : s.end_s);
      const w = Math.max(1, b - a - (b - a > 4 ? 1 : 0));
      const g = el("g", { class: "seg-mark", "data-genre": s.genre, "data-start": s.start_s }, marks);
      el("title", {}, g).textContent = clock(s.start_s) + "–" + clock(s.end_s) + "  " + s.genre + " " + pct(s.confidence) +
        "\n" + order.slice(0, 3).map((k) => k + " " + pct((s.probabilities || {})[k] || 0)).join(", ");
      let acc = 0;
      const probs = s.probabilities || { [s.genre]: s.confidence };
      for (const k of order.concat(Object.keys(probs).filter((k) => !order.includes(k)))) {
        const p = probs[k] || 0;
        if (p * ih >= 0.5) {
          el("rect", { x: a, width: w, y: y(acc + p), height: Math.max(0, y(acc) - y(acc + p)), fill: colour(k) }, g);
          if (p >= 0.05) used.add(k);
        }
        acc += p;
      }
    });
    el("line", { x1: m.l, x2: W - m.r, y1: y(0), y2: y(0), stroke: "#98a2b3" }, axis);

    // Open-set models: each segment's in-set score as a line on the same 0-100% scale ("other"
    // below 50%), and hatched stretches where the segments are "other" (as in the timeline PNG).
    const openSet = segs.length > 0 && segs.every((s) => typeof s.in_set === "number");
    if (openSet) {
      const defs = el("defs", {}, svg);
      const pat = el("pattern", { id: "other-hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse",
                                  patternTransform: "rotate(45)" }, defs);
      el("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: colour("other"), "stroke-width": 2 }, pat);
      const spans = el("g", { class: "other-spans" }, svg);
      segs.forEach((s, i) => {
        if (s.genre !== "other") return;
        const end = i + 1 < segs.length ? Math.min(segs[i + 1].start_s, s.end_s) : s.end_s;
        el("rect", { x: x(s.start_s), width: Math.max(1, x(end) - x(s.start_s)), y: y(1), height: ih,
                     fill: "url(#other-hatch)" }, spans);
      });
      el("polyline", { class: "in-set", fill: "none", stroke: "#1d2939", "stroke-width": 1.5,
                       points: segs.map((s) => x((s.start_s + s.end_s) / 2).toFixed(1) + "," + y(s.in_set).toFixed(1)).join(" ") }, svg);
    }

    const legend = $("legend");
    legend.textContent = "";
    for (const k of order.filter((k) => used.has(k))) {
      const span = document.createElement("span");
      span.style.setProperty("--c", colour(k));
      span.textContent = k;
      legend.appendChild(span);
    }
    if (openSet) {
      const span = document.createElement("span");
      span.style.setProperty("--c", "#1d2939");
      span.textContent = "line: in-set score (hatched: other, below 50%)";
      legend.appendChild(span);
    }
  }

  function drawTags(tags) {
    const wrap = $("tags-wrap"), box = $("tags");
    box.textContent = "";
    if (!tags || !tags.length) { wrap.hidden = true; return; }
    for (const t of tags) {
      const chip = document.createElement("span");
      chip.className = "tag";
      const name = t.tag || t.name || t.label || Object.values(t)[0];
      const p = t.probability !== undefined ? t.probability : t.score;
      chip.textContent = name + (typeof p === "number" ? " " + pct(p) : "");
      box.appendChild(chip);
    }
    wrap.hidden = false;
  }

  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { if (lastResult && !$("result").hidden) drawTimeline(lastResult); }, 150);
  });
})();
