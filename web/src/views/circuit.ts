/**
 * Circuit discovery (ACDC, EAP) drawn as a graph whose edge widths are their scores (click an edge
 * for its score), and path patching as a table of paths and effects.
 */
import { loadWhenReady, OptionsForm } from '../options-form';
import { h, meta, output, panel, View } from '../ui';

const circuitOptions = loadWhenReady(new OptionsForm('circuits', {
  initial: { n: '4' },
  labels: { task: 'Task', method: 'Method', threshold: 'Threshold', n: 'Examples', seed: 'Seed', igSteps: 'IG steps', igPath: 'IG path', sender: 'Sender', path: 'Path' },
}));

export const circuit: View = {
  id: 'circuit', label: 'Circuits', kind: 'circuit',
  panel: panel('circuit', 'Circuits', [h('p', { class: 'muted', text: "Uses the task's own clean and corrupted examples, not the prompt box; planted models have tasks whose circuits are known." }), circuitOptions.el]),
  body: () => circuitOptions.body(),
  restore: (r) => circuitOptions.restore(r),
  render: (run) => {
    const r = run.result;
    const out = output(circuit);
    if (r.kind === 'path') {
      meta(circuit, `path patching on ${r.settings.task} (${r.settings.n} examples), metric ${r.settings.metric}: clean ${r.clean.toFixed(4)}, corrupted ${r.corrupt.toFixed(4)} · effect = (patched − clean) / (corrupted − clean)`);
      out.append(h('table', { class: 'striped paths', 'data-testid': 'path-table' },
        h('thead', {}, h('tr', {}, ...['path', 'effect', 'KL'].map((t) => h('th', { text: t })))),
        h('tbody', {}, ...r.paths.map((p: any) => h('tr', {}, h('td', { text: p.path.join(' → ') }), h('td', { text: p.effect.toFixed(3) }), h('td', { text: p.kl.toFixed(4) }))))));
      return;
    }
    meta(circuit, `${r.method} on ${r.settings.task} (${r.settings.n} examples), threshold ${r.threshold}: ${r.edges.length} of ${r.totalEdges} edges · metric ${r.metric}: clean ${r.clean.toFixed(4)}, corrupted ${r.corrupt.toFixed(4)}, circuit only ${r.circuitMetric.toFixed(4)} (faithfulness ${r.faithfulness.toFixed(3)})`);
    const detail = h('p', { class: 'edge-detail', 'data-testid': 'edge-detail', text: 'Click an edge for its score.' });
    // The server draws the graph (the same SVG as `lantern circuit --svg`, its text escaped there); its lines are the edges, in order.
    const graph = h('div', { class: 'circuit-graph scroll', 'data-testid': 'circuit-graph' });
    graph.innerHTML = r.svg;
    const what = r.method === 'acdc' ? 'rise in KL(clean ‖ circuit) when removed' : 'score (fraction of the clean − corrupted metric difference)';
    const lines = graph.querySelectorAll('line');
    if (lines.length === r.edges.length) lines.forEach((line, i) => {
      const e = r.edges[i];
      line.setAttribute('data-edge', String(i));
      line.style.cursor = 'pointer';
      line.addEventListener('click', () => {
        graph.querySelectorAll('line.chosen').forEach((x) => x.classList.remove('chosen'));
        line.classList.add('chosen');
        detail.textContent = `${e.sender} → ${e.receiver}: ${what} ${e.score.toPrecision(4)}`;
      });
    });
    out.append(detail, graph, h('details', {}, h('summary', { text: `All ${r.edges.length} edges` }),
      h('table', { class: 'striped' }, h('tbody', {}, ...r.edges.map((e: any) => h('tr', {}, h('td', { text: `${e.sender} → ${e.receiver}` }), h('td', { text: e.score.toPrecision(4) })))))));
  },
};
