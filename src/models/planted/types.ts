/** The machine-readable description written next to a planted model as `planted.json`. */

export const PLANTED_KINDS = ['induction', 'copy-suppression', 'ngram-neuron', 'ioi', 'successor'] as const;
/** A kind of planted model. */
export type PlantedKind = (typeof PLANTED_KINDS)[number];

/** One block of the residual stream: a one-hot code over `units` at dims [start, end), plus a balance coordinate. */
export interface PlantedBlock {
  name: string;
  /** [start, end): unit i is coordinate start + i. */
  dims: [number, number];
  /** Holds minus the block's sum, so every residual vector has mean zero (null for the BIAS coordinate, which the stream never writes). */
  balanceDim: number | null;
  units: string[];
  meaning: string;
}

/** A component of the model: an attention head or an MLP neuron. */
export interface PlantedComponent {
  /** 'blocks.L.attn' or 'blocks.L.mlp'. */
  component: string;
  layer: number;
  /** Attention head index (for 'blocks.L.attn'). */
  head?: number;
  /** MLP neuron index (for 'blocks.L.mlp'). */
  neuron?: number;
  /** Short name: 'previous-token head', 'induction head', 'n-gram neuron', 'distractor head', ... */
  role: string;
  /** True for the mechanism; false for controls (components that do something, but nothing the task needs). */
  planted: boolean;
  /** Where to observe or ablate it (TransformerLens names); heads: index `head` on the head axis, neurons: index `neuron` on the last axis. */
  hooks: string[];
  /** Which queries attend to which keys (heads), or when it fires (neurons). */
  attends?: string;
  fires?: string;
  /** Residual blocks read and written (see `residual`). */
  reads: string[];
  writes: string[];
  /** Token ids this component is specific to, by meaning (e.g. { first: 83, second: 71, predicts: 68 }). */
  tokens?: Record<string, number | number[]>;
  /** Positions involved, in words or as indices. */
  positions?: string | number[];
  /** What ablating it (zeroing hook_z for the head / hook_post for the neuron) does to the task. */
  ablation: string;
  details: string;
}

/** How to make prompts for a planted model and what it should predict. */
export interface PlantedTask {
  /** The prompt generator in the library (src/models/planted/prompts.ts) and its defaults. */
  generator: string;
  prompts: string;
  answer: string;
  /** The measured quantity and what counts as success. */
  metric: string;
  /** Token ids the task draws from (e.g. the alphabet or the names). */
  tokens: Record<string, number | number[]>;
}

/** What planted.json says: the mechanism's heads, neurons and positions, the prompts, and the measured metrics. */
export interface PlantedDescription {
  kind: PlantedKind;
  version: 1;
  description: string;
  /** The GPT-2 shape (TransformerLens names). */
  config: { nLayers: number; dModel: number; nHeads: number; dHead: number; dMlp: number; nCtx: number; dVocab: number; tiedUnembed: boolean };
  /** How the residual stream is laid out; the LayerNorm weights make each LayerNorm the identity on this layout. */
  residual: PlantedBlock[];
  /** Scales used by the construction (attention score margins, logit sizes, neuron gains). */
  constants: Record<string, number>;
  mechanism: PlantedComponent[];
  /** Components that are not part of the mechanism; ablating them leaves the behaviour intact. */
  controls: PlantedComponent[];
  task: PlantedTask;
  /** Measured by running the written checkpoint with Lantern at generation (absent if not measured). */
  metrics?: Record<string, number>;
}
