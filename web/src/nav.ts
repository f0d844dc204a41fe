/**
 * The Workbench's navigation: two levels of tabs. The first row holds the groups of views (Alt+1
 * … Alt+9; pressing a group's key again moves on to its next view); a group of several views shows
 * them in a second row. A group of one view is that view's tab itself. Arrow keys move along
 * either row, Home and End to its ends. Every view keeps its tab id (`#tab-<view>`) and its hash
 * (`#<view>`), and a group reopens the view last shown in it.
 */
import { current, onViewShown, showView, views } from './registry';
import { $, h, View } from './ui';

/** A group of views: its id, its label in the first row, and its views' ids in order. */
export interface ViewGroup {
  id: string;
  label: string;
  views: string[];
}

/**
 * Builds both rows in `nav` (the first, a tablist) and the second-row container after it. Views
 * in no group get a group of their own, before the last group (Saved runs stays last).
 */
export function buildNav(nav: HTMLElement, declared: ViewGroup[], onView: (v: View) => void): void {
  const byId = new Map(views.map((v) => [v.id, v]));
  const grouped = new Set(declared.flatMap((g) => g.views));
  const loose = views.filter((v) => !grouped.has(v.id)).map((v) => ({ id: v.id, label: v.label, views: [v.id] }));
  const groups = [...declared.slice(0, -1), ...loose, ...declared.slice(-1)]
    .map((g) => ({ ...g, members: g.views.map((id) => byId.get(id)).filter((v): v is View => v !== undefined) }))
    .filter((g) => g.members.length > 0);
  const second = h('div', { class: 'subtabs-area' });
  nav.after(second);
  const lastShown = new Map<string, View>();
  const groupOf = (v: View) => groups.find((g) => g.members.includes(v))!;
  const groupTab = (g: (typeof groups)[number]) => $(g.members.length === 1 ? `#tab-${g.members[0].id}` : `#group-${g.id}`, nav);
  const open = (g: (typeof groups)[number]) => showView(lastShown.get(g.id) ?? g.members[0]);

  const tabFor = (v: View, hint: string) => {
    const b = h('button', { type: 'button', role: 'tab', id: `tab-${v.id}`, 'aria-controls': `view-${v.id}`, class: 'tab', text: v.label, title: hint, 'data-views': v.id });
    b.addEventListener('click', () => showView(v));
    onView(v);
    return b;
  };
  groups.forEach((g, i) => {
    const key = i < 9 ? `Alt+${i + 1}` : '';
    if (g.members.length === 1) {
      nav.append(tabFor(g.members[0], key));
      return;
    }
    const b = h('button', {
      type: 'button', role: 'tab', id: `group-${g.id}`, 'aria-controls': `subtabs-${g.id}`, class: 'tab group-tab',
      text: g.label, title: `${g.members.map((v) => v.label).join(', ')}${key ? ` (${key})` : ''}`, 'data-views': g.members.map((v) => v.id).join(' '),
    });
    b.addEventListener('click', () => open(g));
    nav.append(b);
    const row = h('div', { role: 'tablist', id: `subtabs-${g.id}`, class: 'tabs subtabs', 'aria-label': `${g.label} views`, hidden: true },
      ...g.members.map((v) => tabFor(v, '')));
    row.addEventListener('keydown', (e) => arrows(e, g.members.map((v) => $(`#tab-${v.id}`, row)), (j) => showView(g.members[j])));
    second.append(row);
  });

  // Arrow keys move along the first row, opening each group's view.
  nav.addEventListener('keydown', (e) => arrows(e, groups.map(groupTab), (j) => open(groups[j])));

  onViewShown((v) => {
    const g = groupOf(v);
    if (!g) return;
    lastShown.set(g.id, v);
    for (const x of groups) {
      const selected = x === g;
      const tab = groupTab(x);
      tab.setAttribute('aria-selected', String(selected));
      tab.tabIndex = selected ? 0 : -1;
      if (x.members.length > 1) $(`#subtabs-${x.id}`, second).hidden = !selected;
    }
  });

  document.addEventListener('keydown', (e) => {
    if (!e.altKey || e.ctrlKey || e.metaKey || !/^[1-9]$/.test(e.key)) return;
    const g = groups[Number(e.key) - 1];
    if (!g) return;
    e.preventDefault();
    // Again on the group shown: its next view.
    const now = current();
    showView(groupOf(now) === g ? g.members[(g.members.indexOf(now) + 1) % g.members.length] : lastShown.get(g.id) ?? g.members[0]);
  });
}

/** Left/Right (and Home/End) along a row of tabs: selects the neighbour and moves the focus to it. */
function arrows(e: KeyboardEvent, tabs: HTMLElement[], select: (i: number) => void): void {
  const i = tabs.indexOf(e.target as HTMLElement);
  if (i < 0) return;
  const n = tabs.length;
  const j = e.key === 'ArrowRight' ? (i + 1) % n : e.key === 'ArrowLeft' ? (i + n - 1) % n : e.key === 'Home' ? 0 : e.key === 'End' ? n - 1 : -1;
  if (j < 0) return;
  e.preventDefault();
  e.stopPropagation();
  select(j);
  tabs[j].focus();
}
