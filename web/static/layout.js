// Places the tiles on the stage. CSS grids cannot size tiles to fill a box
// at a fixed aspect ratio for any count, so this does it: it picks the
// column count that gives the largest 16:9 tiles fitting the stage, and
// positions each tile absolutely. With a featured tile (a screen share, a
// pinned tile, or the active speaker in speaker view) the featured one
// takes most of the stage and the rest go into a strip beside or below it.

const ASPECT = 16 / 9;

/**
 * The largest tiles of the given aspect that n of them fit in w x h.
 * @returns {{cols: number, rows: number, w: number, h: number}}
 */
export function bestGrid(n, w, h, gap, aspect = ASPECT) {
  let best = { cols: 1, rows: Math.max(n, 1), w: 0, h: 0 };
  if (n <= 0 || w <= 0 || h <= 0) return best;
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    let tw = (w - gap * (cols - 1)) / cols;
    let th = tw / aspect;
    if (th * rows + gap * (rows - 1) > h) {
      th = (h - gap * (rows - 1)) / rows;
      tw = th * aspect;
    }
    if (tw > best.w + 0.5) best = { cols, rows, w: tw, h: th };
  }
  return best;
}

/** Rectangles for n tiles in a box, centred, the last row centred too. */
export function gridRects(n, box, gap) {
  const g = bestGrid(n, box.w, box.h, gap);
  const usedH = g.rows * g.h + (g.rows - 1) * gap;
  const top = box.y + (box.h - usedH) / 2;
  const out = [];
  for (let i = 0; i < n; i++) {
    const row = Math.floor(i / g.cols);
    const inRow = row === g.rows - 1 ? n - row * g.cols : g.cols;
    const rowW = inRow * g.w + (inRow - 1) * gap;
    const left = box.x + (box.w - rowW) / 2;
    const col = i - row * g.cols;
    out.push({ x: left + col * (g.w + gap), y: top + row * (g.h + gap), w: g.w, h: g.h });
  }
  return out;
}

/**
 * Rectangles for a featured tile and a strip of n others: the strip goes
 * to the right on a landscape stage and below on a portrait one.
 * @returns {{featured: object, strip: object[]}}
 */
export function spotlightRects(n, box, gap) {
  if (n === 0) return { featured: gridRects(1, box, gap)[0], strip: [] };
  const { featured, side } = spotlightAreas(box, gap);
  // The strip's tiles stay clearly smaller than the featured one (on a
  // narrow stage one strip tile could otherwise be as wide): shrink the
  // strip's box about its centre until they are.
  let area = side;
  let strip = gridRects(n, area, gap);
  for (let i = 0; i < 12 && strip[0].w * strip[0].h > featured.w * featured.h * 0.4; i++) {
    const w = area.w * 0.85;
    const h = area.h * 0.85;
    area = { x: area.x + (area.w - w) / 2, y: area.y + (area.h - h) / 2, w, h };
    strip = gridRects(n, area, gap);
  }
  return { featured, strip };
}

/** The featured tile's rectangle and the box the strip gets. */
function spotlightAreas(box, gap) {
  const landscape = box.w >= box.h * 1.1 && box.w >= 600;
  let main;
  let side;
  if (landscape) {
    const sw = Math.min(Math.max(box.w * 0.2, 140), 320);
    main = { x: box.x, y: box.y, w: box.w - sw - gap, h: box.h };
    side = { x: box.x + box.w - sw, y: box.y, w: sw, h: box.h };
  } else {
    // Portrait (a phone): the featured tile across the top, the others
    // share what is left below it.
    const fh = Math.min(box.w / ASPECT, box.h * 0.6);
    const featured = { x: box.x + (box.w - fh * ASPECT) / 2, y: box.y, w: fh * ASPECT, h: fh };
    side = { x: box.x, y: box.y + fh + gap, w: box.w, h: box.h - fh - gap };
    return { featured, side };
  }
  return { featured: gridRects(1, main, gap)[0], side };
}

export class Layout {
  /**
   * @param {HTMLElement} el the grid element holding the tiles
   * @param {import('./ui.js').Grid} grid
   */
  constructor(el, grid) {
    this.el = el;
    this.grid = grid;
    this.mode = 'grid'; // or 'speaker'
    this.pinned = null; // tile id pinned by this viewer
    this.speaker = null; // active speaker's participant id
    this.gap = 10;
    this.frame = 0;
    new ResizeObserver(() => this.schedule()).observe(el);
  }

  setMode(mode) { this.mode = mode; this.schedule(); }

  /** Pins a tile, or unpins it when it is the pinned one. */
  togglePin(id) {
    this.pinned = this.pinned === id ? null : id;
    for (const [tid, tile] of this.grid.tiles) tile.setPinned(tid === this.pinned);
    this.schedule();
  }

  setSpeaker(id) {
    if (this.speaker === id) return;
    this.speaker = id;
    if (this.mode === 'speaker') this.schedule();
  }

  /** The tile that gets the large place, or null for a plain grid. */
  featured() {
    const tiles = this.grid.tiles;
    if (this.pinned && tiles.has(this.pinned)) return this.pinned;
    const screens = [...tiles.keys()].filter((id) => tiles.get(id).el.classList.contains('screen'));
    if (screens.length) return screens[screens.length - 1];
    if (this.mode === 'speaker' && tiles.size > 1) {
      if (this.speaker && tiles.has(this.speaker)) return this.speaker;
      return [...tiles.keys()].find((id) => !tiles.get(id).local) || null;
    }
    return null;
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.apply();
    });
  }

  apply() {
    const box = { x: 0, y: 0, w: this.el.clientWidth, h: this.el.clientHeight };
    const ids = [...this.grid.tiles.keys()];
    const gap = box.w < 500 ? 6 : this.gap;
    const place = (id, r) => {
      const s = this.grid.tiles.get(id).el.style;
      s.left = `${Math.round(r.x)}px`;
      s.top = `${Math.round(r.y)}px`;
      s.width = `${Math.floor(r.w)}px`;
      s.height = `${Math.floor(r.h)}px`;
    };
    const feat = this.featured();
    this.el.dataset.layout = feat ? 'spotlight' : 'grid';
    for (const [id, tile] of this.grid.tiles) tile.el.classList.toggle('featured', id === feat);
    if (!feat) {
      gridRects(ids.length, box, gap).forEach((r, i) => place(ids[i], r));
      return;
    }
    const rest = ids.filter((id) => id !== feat);
    const { featured, strip } = spotlightRects(rest.length, box, gap);
    place(feat, featured);
    strip.forEach((r, i) => place(rest[i], r));
  }
}
