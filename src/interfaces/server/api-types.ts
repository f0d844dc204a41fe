/**
 * The shapes the Workbench API answers with, declared once for the server (src/interfaces/server)
 * and the web app (web/src), which imports these types. Keep this file free of Node imports: the
 * web app type-checks it for the browser.
 */
import type { PlantedComponent, PlantedTask } from '../../models/planted/types.js';

/** The kinds of saved run, one for each view that runs a method through the job queue. */
export const RUN_KINDS = ['forward', 'attribution', 'lens', 'attention', 'patching', 'probes', 'trace', 'circuit'] as const;
/** A kind of saved run. */
export type RunKind = (typeof RUN_KINDS)[number];
/**
 * Runs of the endpoints that answer in the request (steering, a head detector's grid, one head,
 * one neuron, a causal-abstraction search, features on a prompt), with no ?async=true or events
 * stream: they still run on the compute queue and are saved like the other kinds.
 */
export const DIRECT_RUN_KINDS = ['steering', 'heads', 'head', 'neuron', 'causal', 'features'] as const;
/** One of {@link DIRECT_RUN_KINDS}. */
export type DirectRunKind = (typeof DIRECT_RUN_KINDS)[number];
/** Every kind of saved run: the queued kinds and the direct ones. */
export const SAVED_RUN_KINDS = [...RUN_KINDS, ...DIRECT_RUN_KINDS] as const;
/** One of {@link SAVED_RUN_KINDS}. */
export type SavedRunKind = (typeof SAVED_RUN_KINDS)[number];
/** Where a run stands; 'interrupted' marks one the server stopped (or crashed) during. */
export type RunStatus = 'queued' | 'running' | 'done' | 'error' | 'cancelled' | 'interrupted';

/** A saved run without its request and result, as run lists show it. */
export interface RunSummary {
  id: string;
  kind: SavedRunKind;
  title: string;
  model: string;
  status: RunStatus;
  createdAt: string;
  finishedAt: string | null;
  error: string | null;
}

/** A saved run: what was asked and what came of it (`Result` and `Request` narrow them where a view knows its kind). */
export interface Run<Result = unknown, Request = Record<string, unknown>> extends RunSummary {
  request: Request;
  result: Result;
}

/** A model a request may name, as GET /api/models lists them. */
export interface ModelChoice {
  ref: string;
  label: string;
  kind: 'bundled' | 'planted' | 'folder' | 'hub' | 'default';
  /** For folders: where it is (the user added it, so showing it back leaks nothing). */
  path?: string;
}

/** A model's card: its shape, tokenizer and, for a planted model, the mechanism planted and its ground truth. */
export interface ModelCard {
  ref: string;
  family: string;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  dModel: number;
  dMlp: number;
  nCtx: number;
  dVocab: number;
  tokenizer: string;
  planted?: { description: string; mechanism: PlantedComponent[]; controls: PlantedComponent[]; task: PlantedTask };
}
