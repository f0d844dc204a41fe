/**
 * Full-batch or minibatch training of a toy model with Lantern's engine: the toy's loss graph,
 * its gradients and AdamW updates (src/train/adamw.ts) are one ONNX graph per step, with the
 * parameters and optimizer state held in the compute thread and replaced in place.
 */
import { Graph, Value } from '../../engine/graph/ir.js';
import { Executor, WeightSet, defaultExecutor } from '../../engine/runtime/executor.js';
import { Tensor } from '../../engine/tensor.js';
import { LanternError } from '../../errors.js';
import { adamwFeeds, adamwState, appendAdamW, AdamWSettings } from '../../train/adamw.js';

/** Optimizer settings of a toy run. */
export interface ToyOptimizer extends AdamWSettings {
  lr: number;
  /** Linear warmup steps (default 0). */
  warmupSteps?: number;
}

/** Builds a toy's loss (and any further outputs) from its parameters; data inputs are declared on `g` by the builder. */
export type ToyLossBuilder = (g: Graph, params: Record<string, Value>) => { loss: Value; outputs?: Record<string, Value> };

/** Trains parameters `init` of a toy model defined by `build`. */
export class ToyTrainer {
  step = 0;

  private constructor(
    private readonly signature: string,
    private readonly build: ToyLossBuilder,
    private readonly shapes: Record<string, number[]>,
    readonly opt: ToyOptimizer,
    private readonly params: WeightSet,
    private readonly decays: (name: string) => boolean,
    private readonly executor: Executor,
  ) {}

  /**
   * `signature` names what `build` computes (with its shapes), so compiled graphs are reused;
   * `decays(name)` says which parameters get weight decay (default: those of rank ≥ 2).
   */
  static async create(
    signature: string, build: ToyLossBuilder, init: Record<string, Tensor>, opt: ToyOptimizer,
    decays?: (name: string) => boolean, executor = defaultExecutor(),
  ): Promise<ToyTrainer> {
    if (!(opt.lr > 0)) throw new LanternError(`learning rate must be positive, got ${opt.lr}`);
    if (!(opt.weightDecay >= 0)) throw new LanternError(`weight decay must be ≥ 0, got ${opt.weightDecay}`);
    const shapes = Object.fromEntries(Object.entries(init).map(([n, t]) => [n, t.shape]));
    const set = await executor.registerWeights({ ...init, ...adamwState(shapes) });
    return new ToyTrainer(signature, build, shapes, opt, set, decays ?? ((n) => shapes[n].length >= 2), executor);
  }

  private lossGraph(): { g: Graph; loss: Value; params: Value[] } {
    const g = new Graph();
    const inputs = Object.fromEntries(Object.entries(this.shapes).map(([n, s]) => [n, g.input(n, 'float32', s)]));
    const { loss, outputs = {} } = this.build(g, inputs);
    g.output('loss', loss);
    for (const [name, v] of Object.entries(outputs)) g.output(name, v);
    return { g, loss, params: Object.values(inputs) };
  }

  /** One AdamW step on `feeds`; returns the loss before the update. */
  async train(feeds: Record<string, Tensor>): Promise<{ loss: number; gradNorm: number }> {
    const t = this.step + 1;
    const warm = this.opt.warmupSteps ?? 0;
    const lr = warm > 0 ? this.opt.lr * Math.min(1, t / warm) : this.opt.lr;
    const update: Record<string, { set: WeightSet; name: string }> = {};
    for (const name of Object.keys(this.params.shapes)) update[`new:${name}`] = { set: this.params, name };
    const decayed = new Set(Object.keys(this.shapes).filter(this.decays));
    const out = await this.executor.run(
      JSON.stringify({ toyTrain: this.signature, opt: this.opt, decayed: [...decayed] }),
      () => {
        const { g, loss, params } = this.lossGraph();
        appendAdamW(g, loss, params, this.opt, (p) => decayed.has(p.name));
        return g;
      },
      { ...feeds, ...adamwFeeds(t, lr, this.opt) },
      { weights: [this.params], update },
    );
    this.step = t;
    const loss = out.loss.toArray()[0];
    if (!Number.isFinite(loss)) throw new LanternError(`toy training diverged at step ${t} (loss ${loss})`);
    return { loss, gradNorm: out.grad_norm.toArray()[0] };
  }

  /** The loss and the builder's further outputs on `feeds`, without updating. */
  async evaluate(feeds: Record<string, Tensor>, fetch?: string[]): Promise<Record<string, Tensor>> {
    return this.executor.run(JSON.stringify({ toyEval: this.signature }), () => this.lossGraph().g, feeds, { weights: [this.params], fetch });
  }

  /** Copies of the current parameters. */
  async weights(): Promise<Record<string, Tensor>> {
    return this.executor.readWeights(this.params, Object.keys(this.shapes));
  }

  /** Frees the parameters and optimizer state in the compute thread. */
  async close(): Promise<void> {
    await this.executor.dropWeights(this.params);
  }
}
