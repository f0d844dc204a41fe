/**
 * The Workbench web app: one prompt box, one view per method, a saved-runs list. Every run goes
 * through the server's compute queue (progress shown live, cancellable) and is saved there, so any
 * result can be reopened later from the runs list.
 *
 * Each view is its own file under views/; add one with a `register(...)` entry below.
 */
import '@picocss/pico/css/pico.min.css';
import './style.css';
import { activeJobs, api, ApiError, Run, runJob } from './api';
import { current, register, setOpener, showView, viewForKind, views } from './registry';
import { $, chatEl, clearResult, h, limitsNote, modelEl, promptEl, provenance, showError, View, warnings } from './ui';
import { modelCard } from './model-card';
import { buildNav } from './nav';
import { predict } from './views/predict';
import { attribution } from './views/attribution';
import { lens } from './views/lens';
import { attention } from './views/attention';
import { patching } from './views/patching';
import { probes } from './views/probes';
import { trace } from './views/trace';
import { circuit } from './views/circuit';
import { runsView } from './views/runs';
import { steeringView } from './views/steering';
import { featuresView } from './views/features';
import { leaderboardView } from './views/leaderboard';
import { judgmentsView } from './views/judgments';
import { causalView } from './views/causal';
import { headsView } from './views/heads';
import { neuronsView } from './views/neurons';
import { jobsView } from './views/jobs';

register(predict, attribution, lens, attention, patching, trace, circuit, probes);
register(featuresView(promptEl, () => modelEl.value));
register(steeringView({ prompt: () => promptEl.value, model: () => modelEl.value }));
register(leaderboardView, judgmentsView);
register(causalView({ model: () => modelEl.value }));
register(headsView(), neuronsView());
// Saved runs stays the last tab.
register(runsView, jobsView);

// ---- Tabs (grouped in two rows: nav.ts), running, progress
const viewsEl = $('#views');
buildNav($('.tabs'), [
  { id: 'predictions', label: 'Predictions', views: ['predict'] },
  { id: 'attribution', label: 'Attribution', views: ['attribution'] },
  { id: 'lenses', label: 'Logit lens', views: ['lens'] },
  { id: 'components', label: 'Attention & heads', views: ['attention', 'heads', 'neurons'] },
  { id: 'patching', label: 'Patching & circuits', views: ['patching', 'trace', 'circuit', 'causal'] },
  { id: 'representations', label: 'Representations', views: ['probes', 'steering', 'features'] },
  { id: 'evaluation', label: 'Evaluation', views: ['leaderboard', 'judgments'] },
  { id: 'runs', label: 'Saved runs', views: ['runs', 'dataset-jobs'] },
], (v) => {
  viewsEl.append(v.panel);
  const form = v.panel.querySelector('form');
  form?.addEventListener('submit', (e) => {
    e.preventDefault();
    void start(v);
  });
});
document.addEventListener('keydown', (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key === 'Enter' && current().kind) {
    e.preventDefault();
    void start(current());
  }
});

const statusEl = $('#status');
const progressEl = $<HTMLProgressElement>('#progress');
const statusText = $('#status-text');
let jobId: string | undefined;
/** What the last Cancel stopped (each job's method or kind). */
let cancelled: string[] = [];
const cancelActive = () => {
  for (const id of activeJobs.keys()) void api.cancel(id).catch(() => {});
};
$('#cancel').addEventListener('click', () => {
  cancelled = [...activeJobs.values()];
  cancelActive();
});

/** For `npm run bench -- --workbench`: when each view's last result arrived and when it was drawn. */
const timings: Record<string, { receivedMs: number; drawnMs: number; serverMs: number }> = {};
(window as unknown as { lanternTimings: typeof timings }).lanternTimings = timings;

async function start(v: View): Promise<void> {
  if (!v.kind || !v.body) return;
  if (jobId) {
    showError(v, 'another run is in progress; wait for it or cancel it');
    return;
  }
  showError(v, null);
  let body: Record<string, unknown>;
  try {
    body = { ...v.body(), model: modelEl.value };
  } catch (e) {
    showError(v, (e as Error).message);
    clearResult(v);
    return;
  }
  const button = v.panel.querySelector<HTMLButtonElement>('button.run');
  if (button) button.setAttribute('aria-busy', 'true');
  statusEl.hidden = false;
  progressEl.removeAttribute('value');
  statusText.textContent = 'queued';
  cancelled = [];
  // Not aria-busy on the panel: Pico turns any aria-busy element into an inline spinner.
  $('.output', v.panel).classList.add('stale');
  let serverMs = 0;
  try {
    const run = await runJob(v.kind, body, (p) => {
      serverMs = p.elapsedMs;
      if (p.fraction === null) progressEl.removeAttribute('value');
      else progressEl.value = p.fraction;
      statusText.textContent = `${p.message}${p.fraction !== null ? ` · ${Math.round(100 * p.fraction)}%` : ''}${p.elapsedMs ? ` · ${(p.elapsedMs / 1000).toFixed(1)} s` : ''}`;
    }, (id) => {
      jobId = id;
      v.alongside?.(body);
    });
    await show(v, run, serverMs);
  } catch (e) {
    // A run that failed takes the jobs queued with it along.
    cancelActive();
    const wasCancelled = e instanceof ApiError && e.message === 'cancelled';
    showError(v, !wasCancelled ? (e as Error).message : cancelled.length > 1 ? `Cancelled: ${cancelled.join(' and ')}, each saved as cancelled.` : 'Cancelled.');
    // The previous result is not this request's: never leave it under the error.
    clearResult(v);
  } finally {
    jobId = undefined;
    statusEl.hidden = true;
    button?.removeAttribute('aria-busy');
    $('.output', v.panel).classList.remove('stale');
  }
}

/** Draws a run in its view, with which model and prompt produced it; times the drawing for the benchmark. */
async function show(v: View, run: Run, serverMs = 0): Promise<void> {
  const received = performance.now();
  warnings(v, []);
  provenance(v, run);
  await v.render!(run);
  // Drawn once the browser has painted the frame after rendering.
  await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
  timings[v.id] = { receivedMs: received, drawnMs: performance.now(), serverMs };
}

/** Opens a saved run: its view, its settings and prompt, and its result (a failed or cancelled run shows why). */
async function open(id: string): Promise<void> {
  try {
    const run = await api.run(id);
    const v = viewForKind(run.kind);
    if (!v) throw new Error(`no view shows ${run.kind} runs`);
    const userMessage = run.request.messages?.filter((m: { role: string }) => m.role === 'user').at(-1)?.content;
    if (run.request.text !== undefined || userMessage !== undefined) promptEl.value = run.request.text ?? userMessage;
    if (run.kind !== 'patching') chatEl.checked = run.request.messages !== undefined;
    v.restore?.(run.request);
    if ([...modelEl.options].some((o) => o.value === run.model)) modelEl.value = run.model;
    showView(v);
    history.replaceState(null, '', `#run/${id}`);
    if (run.status !== 'done') {
      clearResult(v);
      showError(v, `This saved run ${run.status === 'error' ? 'failed' : `is ${run.status}`}${run.error ? `: ${run.error}` : ''}. Its settings are restored above.`);
      return;
    }
    showError(v, null);
    await show(v, run);
  } catch (e) {
    showView(runsView);
    showError(runsView, (e as Error).message);
  }
}
setOpener(open);

// ---- Models
const HUB_KEY = 'lantern.hubModels';
const savedHub = (): string[] => {
  try {
    const v = JSON.parse(localStorage.getItem(HUB_KEY) ?? '[]');
    return Array.isArray(v) ? v.filter((x) => typeof x === 'string') : [];
  } catch {
    return [];
  }
};

async function loadModels(select?: string): Promise<void> {
  const { default: def, models } = await api.models();
  modelEl.replaceChildren(...models.map((m) => h('option', { value: m.ref, text: m.label, title: m.path ?? m.ref, 'data-kind': m.kind })));
  for (const ref of savedHub()) modelEl.append(h('option', { value: ref, text: `${ref.slice(4)} (Hub)`, title: ref, 'data-kind': 'hub' }));
  const want = select ?? localStorage.getItem('lantern.model') ?? def;
  modelEl.value = [...modelEl.options].some((o) => o.value === want) ? want : def;
  updateRemovable();
}

const removeBtn = $<HTMLButtonElement>('#remove-model');
/** Only models the user added (folders, Hub ids) can be removed. */
function updateRemovable(): void {
  const kind = modelEl.selectedOptions[0]?.dataset.kind;
  removeBtn.hidden = kind !== 'folder' && kind !== 'hub';
}
modelEl.addEventListener('change', () => {
  localStorage.setItem('lantern.model', modelEl.value);
  updateRemovable();
  void showCard();
});

$('#add-model').addEventListener('click', async () => {
  const p = prompt('A local Hugging Face model folder (absolute path, with config.json, model.safetensors, tokenizer.json: GPT-2, Llama, Mistral, Qwen, Gemma, Pythia, Phi-3) or a Hugging Face Hub id (e.g. gpt2):');
  if (!p?.trim()) return;
  const given = p.trim();
  try {
    if (given.startsWith('/')) {
      const f = await api.addFolder(given);
      localStorage.setItem('lantern.model', f.ref);
      await loadModels(f.ref);
    } else {
      // A path that is not absolute is not a Hub id: refuse it rather than send it to the Hub.
      if (/^(\.{1,2}|~)(\/|$)/.test(given) || given.includes('..') || given.includes('\\') || given.split('/').length > 2) {
        throw new Error(`'${given}' is a relative path, not a Hub id: give a model folder as an absolute path (starting with /), or a Hub id like 'gpt2' or 'org/name'`);
      }
      const ref = `hub:${given}`;
      // The server checks the id (and refuses Hub ids when it runs offline); the first run downloads it.
      await api.checkModel(ref);
      if (![...modelEl.options].some((o) => o.value === ref)) {
        localStorage.setItem(HUB_KEY, JSON.stringify([...savedHub(), ref]));
        modelEl.append(h('option', { value: ref, text: `${given} (Hub)`, title: ref, 'data-kind': 'hub' }));
      }
      modelEl.value = ref;
      localStorage.setItem('lantern.model', ref);
      updateRemovable();
    }
    showError(current(), null);
  } catch (e) {
    showError(current(), (e as Error).message);
  }
});

removeBtn.addEventListener('click', async () => {
  const opt = modelEl.selectedOptions[0];
  if (!opt || !confirm(`Remove ${opt.text} from the list? (Its files are not touched.)`)) return;
  try {
    if (opt.dataset.kind === 'folder') await api.removeFolder(opt.value.slice('folder:'.length));
    else localStorage.setItem(HUB_KEY, JSON.stringify(savedHub().filter((r) => r !== opt.value)));
    localStorage.removeItem('lantern.model');
    await loadModels();
    void showCard();
  } catch (e) {
    showError(current(), (e as Error).message);
  }
});

/** The selected model's card (family, shape, tokenizer; a planted model's mechanism) in the model details. */
async function showCard(): Promise<void> {
  const el = $('#model-card');
  const ref = modelEl.value;
  el.replaceChildren(h('small', { class: 'muted', text: 'loading the model card…' }));
  try {
    const c = await api.modelCard(ref);
    if (modelEl.value !== ref) return;
    el.replaceChildren(modelCard(c));
  } catch (e) {
    el.replaceChildren(h('small', { class: 'muted', text: (e as Error).message }));
  }
}

// ---- The prompt and the chosen model survive a reload; the URL hash picks the view (or a saved run).
promptEl.value = localStorage.getItem('lantern.prompt') ?? promptEl.value;
chatEl.checked = localStorage.getItem('lantern.chat') === 'true';
promptEl.addEventListener('input', () => localStorage.setItem('lantern.prompt', promptEl.value));
chatEl.addEventListener('change', () => localStorage.setItem('lantern.chat', String(chatEl.checked)));

function followHash(): void {
  const run = /^#run\/(.+)$/.exec(location.hash);
  if (run) {
    void open(decodeURIComponent(run[1]));
    return;
  }
  const v = views.find((x) => `#${x.id}` === location.hash);
  if (v && v !== current()) showView(v);
}
window.addEventListener('hashchange', followHash);

void api.limits().then(({ views: lim }) => {
  for (const v of views) {
    const l = v.kind ? (lim as Record<string, { chars: number; tokens?: number }>)[v.kind] : undefined;
    if (l) limitsNote(v, `Prompt: up to ${l.chars.toLocaleString('en-US')} characters${l.tokens ? ` and ${l.tokens} tokens` : ''}, and the model's context.`);
  }
}).catch(() => {});

showView(views.find((v) => `#${v.id}` === location.hash) ?? views[0]);
void loadModels().then(() => {
  if (location.hash.startsWith('#run/')) followHash();
  void showCard();
}).catch((e) => showError(current(), `cannot reach the server: ${(e as Error).message}`));
