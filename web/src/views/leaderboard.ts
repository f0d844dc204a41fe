/**
 * Workbench view: an arena leaderboard — Bradley–Terry ratings with their bootstrap intervals
 * (drawn as bars on one scale), online Elo, and the win-rate matrix — from a stored pairwise run's
 * battles or from a battles file (JSONL) chosen here.
 */
import { fillRuns, fmt, getJSON, h, section, showError } from './eval-common';

interface Entry { model: string; rating: number; lower: number; upper: number; rank: number; elo: number; battles: number; expectedWinRate: number }
interface Report { leaderboard: Entry[]; models: string[]; winRate: (number | null)[][]; bootstrapSkipped: number }

const s = section('leaderboard', 'Leaderboard');
const runSelect = h('select', { name: 'run', 'aria-label': 'Pairwise run' });
const fileInput = h('input', { type: 'file', name: 'battles', accept: '.jsonl,.ndjson', 'aria-label': 'Battles file (JSONL)' });
const showBtn = h('button', { type: 'button', class: 'run', text: 'Rank' });
s.controls.append(h('label', {}, 'Stored pairwise run', runSelect), h('label', {}, 'or a battles file', fileInput), showBtn);

function render(r: Report): void {
  const lo = Math.min(...r.leaderboard.map((e) => e.lower));
  const hi = Math.max(...r.leaderboard.map((e) => e.upper));
  const x = (v: number) => `${(100 * (v - lo)) / Math.max(hi - lo, 1e-9)}%`;
  const rows = r.leaderboard.map((e) => h('tr', { 'data-model': e.model },
    h('td', { text: String(e.rank) }), h('td', { text: e.model }), h('td', { class: 'num', text: fmt(e.rating, 1) }),
    h('td', { class: 'interval', title: `95% interval ${fmt(e.lower, 1)} to ${fmt(e.upper, 1)}` },
      h('div', { class: 'interval-track', style: 'position:relative;height:0.8em;background:var(--pico-muted-border-color);min-width:10em' },
        h('div', { class: 'interval-bar', style: `position:absolute;left:${x(e.lower)};width:calc(${x(e.upper)} - ${x(e.lower)});height:100%;background:var(--pico-primary)` }),
        h('div', { style: `position:absolute;left:${x(e.rating)};width:2px;height:100%;background:var(--pico-color)` }))),
    h('td', { class: 'num', text: `${fmt(e.lower, 1)} – ${fmt(e.upper, 1)}` }), h('td', { class: 'num', text: fmt(e.elo, 1) }),
    h('td', { class: 'num', text: String(e.battles) }), h('td', { class: 'num', text: fmt(e.expectedWinRate) })));
  const board = h('table', { class: 'striped leaderboard' },
    h('thead', {}, h('tr', {}, ...['Rank', 'Model', 'Rating', '', '95% interval', 'Elo', 'Battles', 'Exp. win rate'].map((t) => h('th', { text: t })))), h('tbody', {}, ...rows));
  const matrix = h('table', { class: 'win-rate' },
    h('thead', {}, h('tr', {}, h('th', { text: 'row beat column' }), ...r.models.map((m) => h('th', { text: m })))),
    h('tbody', {}, ...r.winRate.map((row, i) => h('tr', {}, h('th', { text: r.models[i] }), ...row.map((v) => h('td', {
      class: 'num', text: fmt(v, 2), style: v === null ? '' : `background: rgba(${v > 0.5 ? '46,160,67' : '218,54,51'}, ${Math.abs(v - 0.5) * 1.2})`,
    }))))));
  s.meta.textContent = `${r.models.length} models${r.bootstrapSkipped ? ` · ${r.bootstrapSkipped} bootstrap resamples left out (a model never won or never lost)` : ''}`;
  s.output.replaceChildren(h('div', { class: 'scroll' }, board), h('h4', { text: 'Win rate (non-tied battles)' }), h('div', { class: 'scroll' }, matrix));
}

showBtn.addEventListener('click', async () => {
  showError(s.error, null);
  try {
    const file = fileInput.files?.[0];
    if (file) {
      const battles = (await file.text()).split('\n').filter((l) => l.trim()).map((l, i) => {
        try {
          return JSON.parse(l);
        } catch {
          throw new Error(`${file.name} line ${i + 1}: not JSON`);
        }
      });
      render(await getJSON<Report>('api/evaluation/arena', { battles, bootstrap: 100, pseudoTies: 1 }));
    } else if (runSelect.value) {
      render(await getJSON<Report>(`api/evaluation/runs/${encodeURIComponent(runSelect.value)}/leaderboard`));
    } else throw new Error('choose a stored pairwise run or a battles file');
  } catch (e) {
    showError(s.error, (e as Error).message);
  }
});

/** The leaderboard view, registered in main.ts. */
export const leaderboardView = {
  id: 'leaderboard', label: 'Leaderboard', panel: s.panel,
  onShow: () => void fillRuns(runSelect, ['judge-pairwise']).catch((e) => showError(s.error, (e as Error).message)),
};
