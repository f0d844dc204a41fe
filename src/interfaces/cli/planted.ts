import { Command } from 'commander';
import { LanternError } from '../../errors.js';
import { makePlanted, plantedKind, PLANTED_FILE, PLANTED_KINDS } from '../../models/planted/index.js';
import type { PlantedComponent } from '../../models/planted/index.js';

function where(c: PlantedComponent): string {
  return c.head !== undefined ? `${c.component} head ${c.head}` : `${c.component} neuron ${c.neuron}`;
}

export function makePlantedCommand(program: Command): void {
  const kinds = PLANTED_KINDS.map((k) => `  ${k.padEnd(18)} ${plantedKind(k).summary}`).join('\n');
  program
    .command('make-planted')
    .description('Write a GPT-2 whose weights are set by construction (a planted circuit with a known mechanism), with planted.json describing it.')
    .argument('<kind>', `which circuit: ${PLANTED_KINDS.join(', ')}`)
    .argument('<folder>', `where to write config.json, model.safetensors, tokenizer.json and ${PLANTED_FILE}`)
    .option('--no-measure', 'skip running the written model on its task (planted.json then has no metrics)')
    .option('--json', `print ${PLANTED_FILE} instead of a summary`)
    .addHelpText('after', `\nKinds:\n${kinds}\n\nExample:\n  lantern make-planted induction /tmp/planted-induction`)
    .action(async (kind: string, folder: string, opts) => {
      plantedKind(kind); // an unknown kind fails here, before anything is written
      let d;
      try {
        d = await makePlanted(kind, folder, { measure: opts.measure });
      } catch (e) {
        // A file in the way, no permission, a full disk: the user's path, not a bug.
        if (e instanceof LanternError || !(e as NodeJS.ErrnoException).code) throw e;
        throw new LanternError(`cannot write the model to ${folder}: ${(e as Error).message}`);
      }
      if (opts.json) {
        console.log(JSON.stringify(d, null, 2));
        return;
      }
      const c = d.config;
      console.log(`wrote planted '${d.kind}' to ${folder} (${c.nLayers} layer${c.nLayers > 1 ? 's' : ''}, d_model ${c.dModel}, ${c.nHeads} heads, d_mlp ${c.dMlp}, context ${c.nCtx}, vocab ${c.dVocab})`);
      console.log('mechanism:');
      for (const m of d.mechanism) console.log(`  ${where(m).padEnd(24)} ${m.role}: ${m.attends ?? m.fires}`);
      console.log('controls (not part of the mechanism):');
      for (const m of d.controls) console.log(`  ${where(m).padEnd(24)} ${m.role}`);
      console.log(`task: ${d.task.prompts}`);
      console.log(`answer: ${d.task.answer}`);
      if (d.metrics) {
        console.log('measured:');
        for (const [k, v] of Object.entries(d.metrics)) console.log(`  ${k.padEnd(44)} ${v}`);
      }
      console.log(`description: ${folder.replace(/\/$/, '')}/${PLANTED_FILE}`);
    });
}
