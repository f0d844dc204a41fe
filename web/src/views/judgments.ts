/**
 * Workbench view: the judgment browser. Lists the items of a stored evaluation run, filtered by
 * position flips, critique disagreements or errors; opening an item shows both answers, and for
 * each order the judge's rationale, raw answer and parsed verdict.
 */
import { fillRuns, getJSON, h, section, showError } from './eval-common';

interface ItemRow { item: string; kind: string; judgments: number; errors: number; positionFlip: boolean; critiqueDisagrees: boolean; verdict: unknown }
interface Judgment { item: string; variant: string; prompt: string; raw: string | null; parsed: unknown; rationale: string | null; error: string | null; meta: Record<string, any> | null }

const s = section('judgments', 'Judgments');
const runSelect = h('select', { name: 'run', 'aria-label': 'Evaluation run' });
const filter = h('select', { name: 'filter', 'aria-label': 'Filter' },
  h('option', { value: 'all', text: 'all items' }), h('option', { value: 'flip', text: 'position flips' }),
  h('option', { value: 'critique', text: 'critique disagrees with verdict' }), h('option', { value: 'error', text: 'errors' }));
const listBtn = h('button', { type: 'button', class: 'run', text: 'Show' });
const detail = h('div', { class: 'judgment-detail' });
s.controls.append(h('label', {}, 'Run', runSelect), h('label', {}, 'Filter', filter), listBtn);

const pre = (text: string) => h('pre', { style: 'white-space: pre-wrap' }, text);

async function openItem(item: string): Promise<void> {
  const { judgments } = await getJSON<{ judgments: Judgment[] }>(`api/evaluation/runs/${encodeURIComponent(runSelect.value)}/items/${encodeURIComponent(item)}`);
  const judged = judgments.filter((j) => j.meta?.kind !== 'pairwise-outcome');
  const finals = judgments.filter((j) => j.meta?.kind === 'pairwise-outcome');
  const first = judged[0]?.meta ?? {};
  const answers = first.kind === 'pairwise'
    ? h('div', { class: 'grid' },
      h('article', {}, h('header', { text: `${first.order === 'xy' ? first.modelA : first.modelB} (${first.x})` }), pre(first.order === 'xy' ? first.answerA : first.answerB)),
      h('article', {}, h('header', { text: `${first.order === 'xy' ? first.modelB : first.modelA} (${first.y})` }), pre(first.order === 'xy' ? first.answerB : first.answerA)))
    : h('article', {}, h('header', { text: String(first.model ?? '') }), pre(String(first.answer ?? '')));
  const cards = judged.map((j) => h('article', { class: 'judgment', 'data-variant': j.variant },
    h('header', {}, h('strong', { text: j.variant }), ' ', j.error ? h('span', { class: 'error', text: j.error }) : h('code', { text: JSON.stringify(j.parsed) })),
    h('p', { text: j.rationale ?? '' }),
    h('details', {}, h('summary', { text: 'raw answer and prompt' }), pre(j.raw ?? '(no answer)'), pre(j.prompt))));
  const verdicts = finals.map((f) => h('p', { class: 'final', text: `${f.variant}: forward ${f.meta?.forward ?? '–'}, swapped ${f.meta?.swapped ?? '–'} → ${JSON.stringify((f.parsed as { final?: unknown })?.final ?? null)}${f.meta?.positionFlip ? ' (position flip)' : ''}` }));
  detail.replaceChildren(h('h4', { text: item }), answers, ...verdicts, ...cards);
}

listBtn.addEventListener('click', async () => {
  showError(s.error, null);
  try {
    if (!runSelect.value) throw new Error('no stored evaluation run: run `lantern judge … --store <data dir>/evaluation.sqlite` first');
    const { items } = await getJSON<{ items: ItemRow[] }>(`api/evaluation/runs/${encodeURIComponent(runSelect.value)}/items?filter=${filter.value}`);
    s.meta.textContent = `${items.length} item${items.length === 1 ? '' : 's'}`;
    const rows = items.map((r) => {
      const open = h('button', { type: 'button', class: 'small', text: 'Open' });
      open.addEventListener('click', () => void openItem(r.item).catch((e) => showError(s.error, (e as Error).message)));
      return h('tr', { 'data-item': r.item },
        h('td', { text: r.item }), h('td', { text: JSON.stringify(r.verdict) }), h('td', { text: String(r.judgments) }), h('td', { text: String(r.errors) }),
        h('td', { text: r.positionFlip ? 'flip' : '' }), h('td', { text: r.critiqueDisagrees ? 'disagrees' : '' }), h('td', {}, open));
    });
    const table = h('table', { class: 'striped judgments' },
      h('thead', {}, h('tr', {}, ...['Item', 'Verdict', 'Judgments', 'Errors', 'Position', 'Critique', ''].map((t) => h('th', { text: t })))), h('tbody', {}, ...rows));
    detail.replaceChildren();
    s.output.replaceChildren(h('div', { class: 'scroll' }, table), detail);
  } catch (e) {
    showError(s.error, (e as Error).message);
  }
});

/** The judgment browser view, registered in main.ts. */
export const judgmentsView = {
  id: 'judgments', label: 'Judgments', panel: s.panel,
  onShow: () => void fillRuns(runSelect, ['judge-pairwise', 'judge-single', 'chainpoll']).catch((e) => showError(s.error, (e as Error).message)),
};
