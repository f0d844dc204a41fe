/** The model to use when the user names none: the bundled demo model. */
import fs from 'node:fs';
import path from 'node:path';
import { LanternError } from '../../errors.js';
import { BUNDLED_MODEL } from '../../paths.js';

export function defaultModel(): string {
  if (!fs.existsSync(path.join(BUNDLED_MODEL, 'config.json'))) {
    throw new LanternError(`the bundled model is missing from this checkout (${BUNDLED_MODEL}); pass --model or run \`npm run train:demo\``);
  }
  return BUNDLED_MODEL;
}
