/**
 * The Workbench web app: one prompt box, one view per method, a saved-runs list. Every run goes
 * through the server's compute queue (progress shown live, cancellable) and is saved there, so any
 * result can be reopened later from the runs list.
 *
 * Each view is its own file under views/; add one with a `register(...)` entry below.
 */
import '@picocss/pico/css/pico.min.css';
import './style.css';
import { api, ApiError, runJob } from './api';
import { current, register, showView, views } from './registry';
import { $, h, modelEl, promptEl, showError, View } from './ui';
import { predict } from './views/predict';
import { attribution } from './views/attribution';
import { lens } from './views/lens';
import { attention } from './views/attention';
import { patching } from './views/patching';
import { probes } from './views/probes';
import { runsView } from './views/runs';
import { steeringView } from './views/steering';
import { featuresView } from './views/features';

register(predict, attribution, lens, attention, patching, probes);
register(featuresView(promptEl));
register(steeringView({ prompt: () => promptEl.value, model: () => modelEl.value }));
// Saved runs stays the last tab.
register(runsView);

// ---- Tabs, running, progress
const tabs = $('.tabs');
const viewsEl = $('#views');
for (const [i, v] of views.entries()) {
  const b = h('button', { type: 'button', role: 'tab', id: `tab-${v.id}`, 'aria-controls': `view-${v.id}`, class: 'tab', text: v.label, title: `Alt+${i + 1}` });
  b.addEventListener('click', () => showView(v));
  tabs.append(b);
  viewsEl.append(v.panel);
  const form = v.panel.querySelector('form');
  form?.addEventListener('submit', (e) => {
    e.preventDefault();
    void start(v);
  });
}

tabs.addEventListener('keydown', (e) => {
  const i = views.indexOf(current());
  const next = e.key === 'ArrowRight' ? views[(i + 1) % views.length] : e.key === 'ArrowLeft' ? views[(i + views.length - 1) % views.length] : undefined;
  if (next) {
    showView(next);
    $(`#tab-${next.id}`).focus();
  }
});
document.addEventListener('keydown', (e) => {
  if (e.altKey && /^[1-9]$/.test(e.key) && views[Number(e.key) - 1]) {
    e.preventDefault();
    showView(views[Number(e.key) - 1]);
  }
  if ((e.ctrlKey || e.metaKey) && e.key === 'Enter' && current().kind) {
    e.preventDefault();
    void start(current());
  }
});

const statusEl = $('#status');
const progressEl = $<HTMLProgressElement>('#progress');
const statusText = $('#status-text');
let jobId: string | undefined;
$('#cancel').addEventListener('click', () => {
  if (jobId) void api.cancel(jobId).catch(() => {});
});

async function start(v: View): Promise<void> {
  if (!v.kind || !v.body) return;
  if (jobId) {
    showError(v, 'another run is in progress; wait for it or cancel it');
    return;
  }
  showError(v, null);
  const body = { ...v.body(), model: modelEl.value };
  const button = v.panel.querySelector<HTMLButtonElement>('button.run');
  if (button) button.setAttribute('aria-busy', 'true');
  statusEl.hidden = false;
  progressEl.removeAttribute('value');
  statusText.textContent = 'queued';
  // Not aria-busy on the panel: Pico turns any aria-busy element into an inline spinner.
  $('.output', v.panel).classList.add('stale');
  try {
    const run = await runJob(v.kind, body, (p) => {
      if (p.fraction === null) progressEl.removeAttribute('value');
      else progressEl.value = p.fraction;
      statusText.textContent = `${p.message}${p.fraction !== null ? ` · ${Math.round(100 * p.fraction)}%` : ''}${p.elapsedMs ? ` · ${(p.elapsedMs / 1000).toFixed(1)} s` : ''}`;
    }, (id) => (jobId = id));
    await v.render!(run);
  } catch (e) {
    showError(v, e instanceof ApiError && e.message === 'cancelled' ? 'Cancelled.' : (e as Error).message);
  } finally {
    jobId = undefined;
    statusEl.hidden = true;
    button?.removeAttribute('aria-busy');
    $('.output', v.panel).classList.remove('stale');
  }
}

// ---- Models
async function loadModels(select?: string): Promise<void> {
  const { default: def, models } = await api.models();
  modelEl.replaceChildren(...models.map((m) => h('option', { value: m.ref, text: m.label, title: m.path ?? m.ref })));
  modelEl.value = select ?? def;
}
$('#add-model').addEventListener('click', async () => {
  const p = prompt('A local Hugging Face model folder (absolute path, with config.json, model.safetensors, tokenizer.json: GPT-2, Llama, Mistral, Qwen, Gemma, Pythia, Phi-3) or a Hugging Face Hub id (e.g. gpt2):');
  if (!p?.trim()) return;
  const given = p.trim();
  try {
    if (given.startsWith('/')) {
      const f = await api.addFolder(given);
      await loadModels(f.ref);
    } else {
      // Hub ids are checked (and downloaded, with progress) by the first run that uses them.
      const ref = `hub:${given}`;
      if (![...modelEl.options].some((o) => o.value === ref)) modelEl.append(h('option', { value: ref, text: `${given} (Hub)` }));
      modelEl.value = ref;
    }
    showError(current(), null);
  } catch (e) {
    showError(current(), (e as Error).message);
  }
});

const initial = views.find((v) => `#${v.id}` === location.hash) ?? views[0];
showView(initial);
void loadModels().catch((e) => showError(current(), `cannot reach the server: ${(e as Error).message}`));
