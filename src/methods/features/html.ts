/** A static HTML page of dashboards: one self-contained file, no scripts, opens anywhere. */
import type { FeatureContext, FeatureDashboard } from './dashboards.js';

function escape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function contextHtml(c: FeatureContext, max: number): string {
  return `<div class="ctx">${c.tokens.map((t, i) => {
    const a = c.activations[i];
    const alpha = max > 0 ? Math.max(0, Math.min(1, a / max)) : 0;
    return `<span title="${a.toFixed(3)}" style="background:rgba(255,120,0,${alpha.toFixed(2)})"${i === c.at ? ' class="at"' : ''}>${escape(t).replace(/\n/g, '⏎')}</span>`;
  }).join('')} <small>${c.activation.toFixed(3)}</small></div>`;
}

function histogramSvg(h: FeatureDashboard['histogram']): string {
  const max = Math.max(1, ...h.counts);
  const w = 6;
  const bars = h.counts.map((c, i) => `<rect x="${i * w}" y="${(60 * (1 - c / max)).toFixed(1)}" width="${w - 1}" height="${(60 * c / max).toFixed(1)}"><title>[${h.edges[i].toPrecision(3)}, ${h.edges[i + 1].toPrecision(3)}): ${c}</title></rect>`).join('');
  return `<svg width="${h.counts.length * w}" height="62" class="hist">${bars}</svg><div class="axis"><span>${h.edges[0]}</span><span>${h.edges[h.edges.length - 1]}</span></div>`;
}

/** One dashboard as an HTML section. */
export function dashboardSection(d: FeatureDashboard): string {
  const logits = d.logits
    ? `<div class="cols"><div><h4>top logits</h4>${d.logits.top.map((l) => `<div>${escape(JSON.stringify(l.token))} <small>${l.value.toFixed(3)}</small></div>`).join('')}</div>` +
      `<div><h4>bottom logits</h4>${d.logits.bottom.map((l) => `<div>${escape(JSON.stringify(l.token))} <small>${l.value.toFixed(3)}</small></div>`).join('')}</div></div>`
    : '';
  const near = d.neighbours?.length ? `<h4>nearest features (decoder cosine)</h4><div>${d.neighbours.map((n) => `<a href="#f${n.index}">#${n.index}</a> <small>${n.cosine.toFixed(3)}</small>`).join(' · ')}</div>` : '';
  const ex = d.explanation ? `<p class="ex">${escape(d.explanation.text)}${d.explanation.score !== undefined ? ` <small>score ${d.explanation.score.toFixed(3)}</small>` : ''}</p>` : '';
  const quant = d.quantiles.map((q) => `<h4>activations in [${q.range[0].toPrecision(3)}, ${q.range[1].toPrecision(3)})</h4>${q.contexts.map((c) => contextHtml(c, d.max)).join('')}`).join('');
  return `<section id="f${d.index}"><h2>Feature ${d.index}</h2>${ex}<p>max ${d.max.toFixed(4)} · density ${(100 * d.density).toFixed(3)}% · mean ${d.mean.toFixed(4)}</p>` +
    `<h4>activation histogram (log-spaced bins)</h4>${histogramSvg(d.histogram)}${logits}${near}<h3>top activations</h3>${d.top.map((c) => contextHtml(c, d.max)).join('')}${quant}</section>`;
}

/** A page of dashboards, headed by what they were built from. */
export function dashboardsHtml(meta: { model: string; hook: string; source: string; dataHash: string; tokens: number; seed: number }, dashboards: FeatureDashboard[]): string {
  const head = `<p>model ${escape(meta.model)} · hook ${escape(meta.hook)} · source ${escape(meta.source)} · ${meta.tokens} tokens (data ${escape(meta.dataHash)}) · seed ${meta.seed}</p>`;
  const toc = `<nav>${dashboards.map((d) => `<a href="#f${d.index}">#${d.index}</a>`).join(' ')}</nav>`;
  return `<!doctype html><html><head><meta charset="utf-8"><title>Feature dashboards — ${escape(meta.source)}</title><style>
body{font:14px system-ui,sans-serif;margin:2em;max-width:70em}section{border-top:1px solid #ccc;padding-top:1em}
.ctx{font-family:ui-monospace,monospace;white-space:pre-wrap;margin:2px 0}.ctx span.at{outline:1px solid #a40}
.hist rect{fill:#c60}.axis{display:flex;justify-content:space-between;width:${6 * 24}px;font-size:11px;color:#666}
.cols{display:flex;gap:3em}.ex{font-style:italic}small{color:#666}
</style></head><body><h1>Feature dashboards</h1>${head}${toc}${dashboards.map(dashboardSection).join('\n')}</body></html>`;
}
