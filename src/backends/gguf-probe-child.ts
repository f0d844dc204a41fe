/**
 * Loads one GGUF file in llama.cpp and exits: run by gguf-probe.ts in a child process, so that a
 * file which makes llama.cpp abort (exit 134) or spin takes down this process, not the caller.
 * Prints "ok", or "refused <reason>" with llama.cpp's logged reason.
 */
const file = process.argv[2];
const lib = await import('node-llama-cpp');
const said: string[] = [];
const llama = await lib.getLlama({
  gpu: false, build: 'never', progressLogs: false, logLevel: lib.LlamaLogLevel.error,
  logger: (_level, message) => { said.push(message.trim()); },
});
try {
  const model = await llama.loadModel({ modelPath: file });
  await model.dispose();
  process.stdout.write('ok\n');
} catch (e) {
  await new Promise((r) => setTimeout(r, 100));
  const why = [...new Set(said.filter((l) => l && !/failed to load model$/.test(l)).map((l) => l.replace(/^llama_model_load:\s*/, '')))].join('; ');
  process.stdout.write(`refused ${(why || (e as Error).message).replace(/\s+/g, ' ')}\n`);
}
process.exit(0);
