/**
 * The Workbench's views, in tab order. Each view lives in its own file under views/ and is added
 * with one `register` line in main.ts.
 */
import { $, View } from './ui';

export const views: View[] = [];

export function register(...vs: View[]): void {
  views.push(...vs);
}

/** The view that draws runs of this kind. */
export function viewForKind(kind: string): View | undefined {
  return views.find((v) => v.kind === kind || (v.kinds as string[] | undefined)?.includes(kind));
}

const shownListeners: ((v: View) => void)[] = [];
/** Calls `f` each time a view is shown (the navigation follows it). */
export function onViewShown(f: (v: View) => void): void {
  shownListeners.push(f);
}

let currentView: View | undefined;
export const current = (): View => currentView ?? views[0];

export function showView(v: View): void {
  currentView = v;
  for (const x of views) {
    x.panel.hidden = x !== v;
    const tab = $(`#tab-${x.id}`);
    tab.setAttribute('aria-selected', String(x === v));
    tab.tabIndex = x === v ? 0 : -1;
  }
  history.replaceState(null, '', `#${v.id}`);
  for (const f of shownListeners) f(v);
  v.onShow?.();
}

let opener: (id: string) => Promise<void> = async () => {};
/** Set by main.ts: how a saved run is opened in its view. */
export function setOpener(f: (id: string) => Promise<void>): void {
  opener = f;
}
/** Opens a saved run in its view (with its settings; a failed run shows its error). */
export const openRun = (id: string): Promise<void> => opener(id);
