/**
 * Splits a graph at "cuts" so JavaScript can run between the pieces.
 *
 * A cut is a pair the model builder makes at a hook with a JS callback: an output `cut:NAME`
 * (the activation) and an input `cutin:NAME` (what the rest of the model uses instead). Each
 * node runs in the earliest piece whose cut inputs it has; values crossing into later pieces
 * become outputs of the piece that makes them, so nothing is computed twice.
 */
import { Graph, Node, Value, Constant, liveNodes } from './ir.js';

export interface GraphPiece {
  nodes: Node[];
  inputs: Value[];
  outputs: Value[];
  constants: Constant[];
}

export function splitAtCuts(g: Graph, cuts: string[]): GraphPiece[] {
  const stageOf = new Map<Value, number>();
  for (const v of g.inputs) {
    const k = cuts.findIndex((c) => v.name === `cutin:${c}`);
    stageOf.set(v, k + 1); // 0 for ordinary inputs, k+1 after cut k
  }
  const nodes = liveNodes(g);
  const nodeStage = new Map<Node, number>();
  for (const n of nodes) {
    const s = Math.max(0, ...n.inputs.map((v) => stageOf.get(v) ?? 0));
    nodeStage.set(n, s);
    for (const o of n.outputs) stageOf.set(o, s);
  }
  const constantOf = new Map(g.constants.map((c) => [c.value, c]));
  const graphInputs = new Set(g.inputs);
  const graphOutputs = new Set(g.outputs);
  const pieces: GraphPiece[] = [];
  for (let s = 0; s <= cuts.length; s++) {
    const mine = nodes.filter((n) => nodeStage.get(n) === s);
    const produced = new Set(mine.flatMap((n) => n.outputs));
    const inputs = new Set<Value>();
    const constants = new Set<Constant>();
    for (const n of mine) {
      for (const v of n.inputs) {
        if (produced.has(v)) continue;
        const c = constantOf.get(v);
        if (c) constants.add(c);
        else inputs.add(v); // a graph input, or a value an earlier piece computed
      }
    }
    const usedLater = new Set(nodes.filter((n) => nodeStage.get(n)! > s).flatMap((n) => n.inputs));
    const outputs = [...produced].filter((v) => graphOutputs.has(v) || (usedLater.has(v) && !graphInputs.has(v)));
    pieces.push({ nodes: mine, inputs: [...inputs], outputs, constants: [...constants] });
  }
  return pieces;
}
