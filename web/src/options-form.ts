/**
 * Forms built from the server's one declaration of each method family's options (GET
 * api/methods/settings), so a form offers exactly what the API accepts; an option shows only where
 * it applies (e.g. for the chosen method).
 */
import { api, type DescribedFamily, type DescribedOption } from './api';
import { h, input, select } from './ui';

type Control = HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;

function optionInput(spec: DescribedOption, initial?: string): Control {
  const t = spec.type;
  const dflt = spec.default === undefined ? undefined : Array.isArray(spec.default) ? spec.default.join(',') : String(spec.default);
  if (t.kind === 'enum') {
    const s = select(spec.key, t.choices, initial ?? dflt);
    // Without a declared default, the option may be left out: the method then chooses.
    if (dflt === undefined) {
      s.prepend(h('option', { value: '', text: 'default' }));
      s.value = initial ?? '';
    }
    return s;
  }
  if (t.kind === 'boolean') return input(spec.key, { type: 'checkbox', role: 'switch', checked: initial === 'true' || (initial === undefined && spec.default === true) });
  if (t.kind === 'prompt') {
    const area = h('textarea', { name: spec.key, rows: 2 });
    area.value = initial ?? '';
    return area;
  }
  const value = initial ?? dflt ?? '';
  if (t.kind === 'integer' || t.kind === 'number') {
    return input(spec.key, { type: 'number', min: t.min ?? (t.kind === 'number' ? t.exclusiveMin : undefined) ?? '', max: t.max ?? '', step: t.kind === 'integer' ? 1 : 'any', placeholder: 'default', value });
  }
  const placeholder = t.kind === 'integers' ? 'e.g. 0,1 (default all)' : t.kind === 'token' ? "zero, or a token's id or text" : t.kind === 'choices' ? t.choices.join(',') : spec.required ? '' : 'optional';
  return input(spec.key, { type: 'text', placeholder, value });
}

export class OptionsForm {
  readonly el = h('div', { class: 'settings' });
  private specs: DescribedOption[] = [];
  private readonly inputs = new Map<string, Control>();

  /**
   * `skip`: options another control gives (the shared prompt box); `outside`: such controls that an
   * option's visibility depends on (attribution's evaluate switch); `initial`: starting values.
   */
  constructor(private readonly family: string, private readonly opts: {
    skip?: string[]; outside?: Record<string, HTMLInputElement | HTMLSelectElement>; initial?: Record<string, string>; labels?: Record<string, string>;
  } = {}) {
    for (const o of Object.values(opts.outside ?? {})) o.addEventListener('change', () => this.update());
  }

  load(families: Record<string, DescribedFamily>): void {
    this.specs = (families[this.family]?.options ?? []).filter((spec) => !(this.opts.skip ?? []).includes(spec.key));
    this.inputs.clear();
    this.el.replaceChildren();
    for (const spec of this.specs) {
      const el = optionInput(spec, this.opts.initial?.[spec.key]);
      el.addEventListener('change', () => this.update());
      this.inputs.set(spec.key, el);
      const label = this.opts.labels?.[spec.key] ?? spec.key;
      this.el.append(spec.type.kind === 'boolean'
        ? h('label', { class: 'switch', title: spec.help }, el, label)
        : h('label', { title: spec.help }, label, el, h('small', { class: 'muted', text: spec.help })));
    }
    this.update();
  }

  /** A control's current value: a switch's state, or the text ('' when left empty). */
  private current(key: string): string | boolean | undefined {
    const el = this.inputs.get(key) ?? this.opts.outside?.[key];
    if (!el) return undefined;
    return el instanceof HTMLInputElement && el.type === 'checkbox' ? el.checked : el.value;
  }

  private applies(spec: DescribedOption): boolean {
    const on = spec.appliesTo;
    if (!on || (spec.alsoWith && this.current(spec.alsoWith) === true)) return true;
    const v = this.current(on.key);
    const dep = v === undefined || v === '' ? this.specs.find((x) => x.key === on.key)?.default : v;
    return on.values.includes(String(dep));
  }

  private update(): void {
    for (const spec of this.specs) (this.inputs.get(spec.key)!.closest('label') as HTMLElement).hidden = !this.applies(spec);
  }

  /** The request's options: those shown and not left at their default. */
  body(): Record<string, unknown> {
    const b: Record<string, unknown> = {};
    for (const spec of this.specs) {
      if (!this.applies(spec)) continue;
      const v = this.current(spec.key);
      if (v === true) b[spec.key] = true;
      if (typeof v !== 'string' || v.trim() === '') continue;
      const x = spec.type.kind === 'prompt' ? v : v.trim();
      switch (spec.type.kind) {
        case 'integer': case 'number': b[spec.key] = Number(x); break;
        case 'integers': b[spec.key] = x.split(',').map((y) => Number(y.trim())); break;
        case 'choices': b[spec.key] = x.split(',').map((y) => y.trim()); break;
        case 'token': b[spec.key] = x === 'zero' ? 'zero' : /^\d+$/.test(x) ? { token: Number(x) } : { text: x }; break;
        default: b[spec.key] = x;
      }
    }
    return b;
  }

  /** Sets the controls from a saved run's request. */
  restore(req: Record<string, any>): void {
    for (const spec of this.specs) {
      const el = this.inputs.get(spec.key)!;
      const v = req[spec.key];
      if (el instanceof HTMLInputElement && el.type === 'checkbox') el.checked = !!v;
      else if (v === undefined) el.value = spec.default === undefined ? '' : String(spec.default);
      else el.value = Array.isArray(v) ? v.join(',') : typeof v === 'object' ? String(v.token ?? v.text) : String(v);
    }
    this.update();
  }
}


const forms: OptionsForm[] = [];
let families: Record<string, DescribedFamily> | undefined;

/** Builds `form` from the server's declaration (now, or once it has arrived). */
export function loadWhenReady(form: OptionsForm): OptionsForm {
  forms.push(form);
  if (families) form.load(families);
  return form;
}

void api.methodSettings().then((r) => {
  families = r.families;
  for (const form of forms) form.load(r.families);
}).catch(() => { /* the views report an unreachable server on their own */ });
