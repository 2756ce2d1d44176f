// Gallery of evaluated images: sort by a per-image score (worst or best first), filter by words, show one page.
"use strict";
(function () {
  const records = JSON.parse(document.getElementById("gallery-data").textContent);
  const settings = JSON.parse(document.getElementById("gallery-settings").textContent);
  const labels = settings.labels || {};
  const panel = 72;  // displayed panel width, px (the strip image is scaled to this height)
  const sortSelect = document.getElementById("sort");
  const filterInput = document.getElementById("filter");
  const pageSizeSelect = document.getElementById("page-size");
  const cards = document.getElementById("cards");
  const pageInfo = document.getElementById("page-info");
  const prev = document.getElementById("prev");
  const next = document.getElementById("next");
  const empty = document.getElementById("empty");
  let page = 0;
  let shown = records;

  // Percentile of each record for each score, to colour the chips from red (worst) to green (best).
  const percentile = {};
  for (const name of settings.scores) {
    const order = records.map((record, index) => index).sort((a, b) => records[a].scores[name] - records[b].scores[name]);
    percentile[name] = new Array(records.length);
    order.forEach((index, rank) => { percentile[name][index] = records.length > 1 ? rank / (records.length - 1) : 0.5; });
  }
  records.forEach((record, index) => { record.index = index; record.text = [record.id, record.caption, ...record.refs].join(" \n ").toLowerCase(); });

  for (const name of settings.scores) {
    for (const [direction, words] of [["asc", "worst first"], ["desc", "best first"]]) {
      sortSelect.add(new Option(`${labels[name] || name}: ${words}`, `${name}:${direction}`));
    }
  }
  sortSelect.add(new Option("image id", "id:asc"));

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function chip(record, name) {
    const node = element("span", "chip", `${labels[name] || name} ${record.scores[name].toFixed(3)}`);
    const hue = Math.round(120 * percentile[name][record.index]);
    node.style.background = `hsl(${hue}, 70%, 85%)`;
    return node;
  }

  function card(record) {
    const node = element("article", "card");
    node.dataset.id = record.id;
    for (const name of settings.scores) node.dataset[name.toLowerCase().replace("_", "")] = record.scores[name];
    if (record.image) {
      const image = element("img", "photo");
      image.loading = "lazy";
      image.alt = record.caption;
      image.src = record.image;
      node.append(image);
    } else {
      node.append(element("div", "missing-image", "image not found in the shards"));
    }
    const text = element("div", "text");
    text.append(element("p", "caption", record.caption || "(empty caption)"));
    const scores = element("div", "scores");
    for (const name of settings.scores) scores.append(chip(record, name));
    text.append(scores);
    const references = element("ol", "references");
    for (const reference of record.refs) references.append(element("li", "", reference));
    text.append(references);
    text.append(element("span", "image-id", `image ${record.id}`));
    node.append(text);
    if (record.strip) {
      const strip = element("div", "strip");
      const image = element("img");
      image.loading = "lazy";
      image.alt = "attention per word";
      image.src = record.strip;
      image.style.width = `${panel * (record.words.length + 1)}px`;
      const words = element("div", "words");
      words.append(element("span", "", "image"));
      for (const word of record.words) words.append(element("span", "", word));
      strip.append(image, words);
      node.append(strip);
    }
    return node;
  }

  function update() {
    const [key, direction] = sortSelect.value.split(":");
    const terms = filterInput.value.toLowerCase().split(/\s+/).filter(Boolean);
    const matches = (record, term) => term.startsWith("id:") ? record.id.toLowerCase() === term.slice(3)
      : record.text.includes(term);
    shown = records.filter((record) => terms.every((term) => matches(record, term)));
    const sign = direction === "desc" ? -1 : 1;
    const value = key === "id" ? (record) => record.id : (record) => record.scores[key];
    shown.sort((a, b) => {
      const [x, y] = [value(a), value(b)];
      return sign * (x < y ? -1 : x > y ? 1 : 0) || a.index - b.index;
    });
    render();
  }

  function render() {
    const size = Number(pageSizeSelect.value);
    const pages = Math.max(1, Math.ceil(shown.length / size));
    page = Math.min(Math.max(page, 0), pages - 1);
    const start = page * size;
    const slice = shown.slice(start, start + size);
    cards.replaceChildren(...slice.map(card));
    empty.hidden = shown.length > 0;
    const filtered = shown.length === records.length ? "" : ` (filtered from ${records.length})`;
    pageInfo.textContent = shown.length
      ? `${start + 1}\u2013${start + slice.length} of ${shown.length}${filtered} \u00b7 page ${page + 1}/${pages}`
      : `0 of ${records.length}`;
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
  }

  sortSelect.addEventListener("change", () => { page = 0; update(); });
  filterInput.addEventListener("input", () => { page = 0; update(); });
  pageSizeSelect.addEventListener("change", () => { page = 0; render(); });
  prev.addEventListener("click", () => { page -= 1; render(); cards.scrollIntoView(); });
  next.addEventListener("click", () => { page += 1; render(); cards.scrollIntoView(); });
  update();
})();
