/**
 * Attention, CircuitsVis-style: a large query × key view of the chosen head with token labels,
 * "attends to / attended from" on hover, value-weighted patterns, and one thumbnail per head that
 * selects it. Everything is drawn on canvases (a 128-token prompt on a 12 × 12 model is 2.4 M
 * cells: far too many DOM or SVG nodes).
 */
import type { Run } from '../api';
import { show } from '../charts';
import { field, h, input, legend, meta, output, panel, promptBody, select, sequential, tokenLabelsOf, View } from '../ui';

export const attention: View = {
  id: 'attention', label: 'Attention', kind: 'attention',
  panel: panel('attention', 'Attention', [h('p', { class: 'muted', text: 'Every layer and head. Pick a head (or click its thumbnail); hover the grid or a token to see what it attends to, or what attends to it.' })]),
  body: () => ({ ...promptBody() }),
  render: (run) => render(run),
};

/** The sequential colour scale of ui.ts as RGB bytes, tabulated once for the canvases. */
const LUT = (() => {
  const t = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const [r, g, b] = sequential(i / 255).match(/\d+/g)!.map(Number);
    t.set([r, g, b], 3 * i);
  }
  return t;
})();

interface State {
  layer: number;
  head: number;
  /** The hovered or focused token, and whether it is read as the query (attends to) or the key (attended from). */
  focus?: { pos: number; as: 'query' | 'key' };
  weighted: boolean;
}

/** Pattern rows of one head, value-weighted and renormalised per query when asked. */
function headPattern(r: any, layer: number, head: number, weighted: boolean): number[][] {
  const p: number[][] = r.patterns[layer][head];
  if (!weighted || !r.valueNorms) return p;
  const norms: number[] = r.valueNorms[layer][head];
  return p.map((row) => {
    const w = row.map((a, k) => a * norms[k]);
    const s = w.reduce((a, b) => a + b, 0) || 1;
    return w.map((x) => x / s);
  });
}

/** Paints a T × T pattern into `ctx` at one pixel per cell (the canvas is scaled by CSS or drawImage). */
function paint(ctx: CanvasRenderingContext2D, p: number[][]): void {
  const T = p.length;
  const img = ctx.createImageData(T, T);
  for (let q = 0; q < T; q++) {
    const row = p[q];
    for (let k = 0; k < T; k++) {
      const o = 4 * (q * T + k);
      if (k > q) {
        img.data[o] = img.data[o + 1] = img.data[o + 2] = 246;
      } else {
        const c = 3 * Math.max(0, Math.min(255, Math.round(255 * row[k])));
        img.data[o] = LUT[c];
        img.data[o + 1] = LUT[c + 1];
        img.data[o + 2] = LUT[c + 2];
      }
      img.data[o + 3] = 255;
    }
  }
  ctx.putImageData(img, 0, 0);
}

function render(run: Run): void {
  const r = run.result;
  const T: number = r.tokens.length;
  const labels = tokenLabelsOf(r).map(show);
  meta(attention, `${r.nLayers} layers × ${r.nHeads} heads · ${T} tokens`);
  const out = output(attention);
  const state: State = { layer: 0, head: 0, weighted: false };

  const layerSel = select('layer', Array.from({ length: r.nLayers }, (_, i) => String(i)));
  const headSel = select('head', Array.from({ length: r.nHeads }, (_, i) => String(i)));
  const weightedBox = input('weighted', { type: 'checkbox', role: 'switch', disabled: !r.valueNorms });
  const modeSel = select('mode', ['attends to', 'attended from'], 'attends to');

  // The large view: the pattern image scaled up, with the labels beside it.
  const cell = Math.max(5, Math.min(40, Math.floor(640 / T)));
  const labelW = Math.min(140, 8 + 7 * Math.max(...labels.map((s) => Math.min(18, s.length))));
  const dpr = window.devicePixelRatio || 1;
  const big = h('canvas', { class: 'attention-main', 'data-testid': 'attention-main', tabindex: 0 });
  const W = labelW + T * cell + 4;
  big.width = Math.round(W * dpr);
  big.height = Math.round(W * dpr);
  big.style.width = `${W}px`;
  big.style.height = `${W}px`;
  const tip = h('div', { class: 'attention-tip', 'aria-live': 'polite', 'data-testid': 'attention-tip' });
  const offscreen = document.createElement('canvas');
  offscreen.width = T;
  offscreen.height = T;
  const offCtx = offscreen.getContext('2d')!;

  let pattern = headPattern(r, 0, 0, false);
  const drawBig = (hover?: { q: number; k: number }) => {
    const ctx = big.getContext('2d')!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, W);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(offscreen, labelW, labelW, T * cell, T * cell);
    ctx.font = `${Math.min(12, Math.max(8, cell - 2))}px ui-monospace, monospace`;
    ctx.fillStyle = '#222';
    ctx.textBaseline = 'middle';
    const fits = cell >= 8;
    for (let i = 0; i < T; i++) {
      if (!fits && i % Math.ceil(8 / cell) !== 0 && i !== T - 1) continue;
      const s = labels[i].length > 18 ? `${labels[i].slice(0, 17)}…` : labels[i];
      ctx.textAlign = 'right';
      ctx.fillText(s, labelW - 4, labelW + (i + 0.5) * cell);
      ctx.save();
      ctx.translate(labelW + (i + 0.5) * cell, labelW - 4);
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = 'left';
      ctx.fillText(s, 0, 0);
      ctx.restore();
    }
    const f = hover ? undefined : state.focus;
    const q = hover?.q ?? (f?.as === 'query' ? f.pos : undefined);
    const k = hover?.k ?? (f?.as === 'key' ? f.pos : undefined);
    ctx.strokeStyle = '#e8871e';
    ctx.lineWidth = 2;
    if (q !== undefined) ctx.strokeRect(labelW, labelW + q * cell, T * cell, cell);
    if (k !== undefined) ctx.strokeRect(labelW + k * cell, labelW, cell, T * cell);
  };

  // The token strip, coloured by the focused token's row (attends to) or column (attended from).
  const strip = h('div', { class: 'chips', 'data-testid': 'attention-tokens' });
  const chips = labels.map((s, i) => {
    const c = h('span', { class: 'token-chip', tabindex: 0, text: s, 'data-pos': i, title: `token ${r.tokens[i]} ${JSON.stringify(r.tokenStrings[i])}` });
    const focus = () => {
      state.focus = { pos: i, as: modeSel.value === 'attends to' ? 'query' : 'key' };
      colourStrip();
      drawBig();
    };
    c.addEventListener('mouseenter', focus);
    c.addEventListener('focus', focus);
    return c;
  });
  strip.append(...chips);
  const colourStrip = () => {
    const f = state.focus;
    chips.forEach((c, j) => {
      const w = !f ? undefined : f.as === 'query' ? (j <= f.pos ? pattern[f.pos][j] : undefined) : (j >= f.pos ? pattern[j][f.pos] : undefined);
      c.style.background = w === undefined ? '' : sequential(w);
      c.style.color = w !== undefined && w > 0.55 ? 'white' : '';
      if (w === undefined) delete c.dataset.weight;
      else c.dataset.weight = String(w);
      c.classList.toggle('query', !!f && j === f.pos);
      c.title = !f ? c.title : w === undefined ? (f.as === 'query' ? 'after the query (masked)' : 'before the key (cannot attend to it)')
        : f.as === 'query' ? `${labels[f.pos]} gives ${(100 * w).toFixed(1)}% of its attention to ${labels[j]}` : `${labels[j]} gives ${(100 * w).toFixed(1)}% of its attention to ${labels[f.pos]}`;
    });
  };

  big.addEventListener('mousemove', (e) => {
    const rect = big.getBoundingClientRect();
    const k = Math.floor((e.clientX - rect.left - labelW) / cell);
    const q = Math.floor((e.clientY - rect.top - labelW) / cell);
    if (q < 0 || k < 0 || q >= T || k >= T) {
      tip.textContent = '';
      drawBig();
      return;
    }
    tip.textContent = k > q ? `query ${q} ${labels[q]} cannot see key ${k} ${labels[k]} (later)` : `query ${q} ${labels[q]} → key ${k} ${labels[k]}: ${(100 * pattern[q][k]).toFixed(2)}%`;
    state.focus = { pos: q, as: 'query' };
    colourStrip();
    drawBig({ q, k });
  });

  // Thumbnails: one per head, linked to the selection.
  const thumbs = h('div', { class: 'attention-thumbs', 'data-testid': 'attention-thumbs', style: `grid-template-columns: 3rem repeat(${r.nHeads}, 56px)` });
  const thumbCanvases: HTMLCanvasElement[][] = [];
  thumbs.append(h('span'), ...Array.from({ length: r.nHeads }, (_, hd) => h('small', { class: 'muted', text: `H${hd}` })));
  for (let l = 0; l < r.nLayers; l++) {
    thumbs.append(h('small', { class: 'muted', text: `L${l}` }));
    thumbCanvases.push([]);
    for (let hd = 0; hd < r.nHeads; hd++) {
      const c = h('canvas', { class: 'thumb', title: `layer ${l} head ${hd}`, 'data-layer': l, 'data-head': hd });
      c.width = T;
      c.height = T;
      c.addEventListener('click', () => choose(l, hd));
      thumbCanvases[l].push(c);
      thumbs.append(c);
    }
  }
  const paintThumbs = () => {
    for (let l = 0; l < r.nLayers; l++) for (let hd = 0; hd < r.nHeads; hd++) paint(thumbCanvases[l][hd].getContext('2d')!, headPattern(r, l, hd, state.weighted));
  };

  const choose = (l: number, hd: number) => {
    state.layer = l;
    state.head = hd;
    layerSel.value = String(l);
    headSel.value = String(hd);
    pattern = headPattern(r, l, hd, state.weighted);
    paint(offCtx, pattern);
    thumbCanvases.flat().forEach((c) => c.classList.toggle('selected', Number(c.dataset.layer) === l && Number(c.dataset.head) === hd));
    // The strip follows the head: the focused token's weights are re-read from the new pattern.
    colourStrip();
    drawBig();
  };
  layerSel.addEventListener('change', () => choose(Number(layerSel.value), state.head));
  headSel.addEventListener('change', () => choose(state.layer, Number(headSel.value)));
  weightedBox.addEventListener('change', () => {
    state.weighted = weightedBox.checked;
    paintThumbs();
    choose(state.layer, state.head);
  });
  modeSel.addEventListener('change', () => {
    if (state.focus) state.focus.as = modeSel.value === 'attends to' ? 'query' : 'key';
    colourStrip();
    drawBig();
  });

  out.append(
    h('div', { class: 'grid-controls' }, field('Layer', layerSel), field('Head', headSel), field('Hover shows', modeSel),
      h('label', { class: 'switch', title: 'weight each key by ‖v W_O‖, the norm of its value vector through the head\'s output matrix (what it can write), and renormalise each row (Kobayashi et al., 2020)' }, weightedBox, 'Value-weighted')),
    strip, legend(0, 1, true),
    h('div', { class: 'attention-layout' }, h('div', { class: 'scroll' }, big, tip), thumbs),
  );
  paintThumbs();
  choose(0, 0);
}
