/**
 * Commander options built from the method families' declarations (src/methods/options.ts), so each
 * command's flags, help, defaults and range checks are the ones the Workbench API is built from.
 */
import { Command, Option } from 'commander';
import { cliOptions, parseOption } from '../../methods/options.js';
import type { MethodFamily, OptionSpec } from '../../methods/options.js';

/** The syntax notes the CLI help adds to the declaration's help. */
function cliSyntax(spec: OptionSpec): string {
  if (spec.type.kind === 'token') return " ('zero' or 'token:<id or text>')";
  if (spec.type.kind === 'choices') return ` (comma-separated: ${spec.type.choices.join(', ')})`;
  if (spec.type.kind === 'enum') return ` (${spec.type.choices.join(', ')})`;
  return '';
}

/** The commander option for one declared option; `note` adds interface-specific help. */
export function cliOption(spec: OptionSpec, note = ''): Option {
  const on = spec.appliesTo ? `${spec.appliesTo.values.join(', ')}: ` : '';
  const shown = spec.default === undefined ? undefined : Array.isArray(spec.default) ? spec.default.join(',') : String(spec.default);
  // Defaults of options that apply only sometimes stay out of the parsed values (else they would
  // look given); the help shows them all the same.
  const late = shown !== undefined && spec.appliesTo ? ` (default: ${shown})` : '';
  const help = `${on}${spec.help}${cliSyntax(spec)}${note}${late}`;
  const flags = `${spec.short ? `${spec.short}, ` : ''}${spec.flag}${spec.arg ? ` ${spec.arg}` : ''}`;
  const o = new Option(flags, help);
  if (spec.type.kind !== 'boolean') o.argParser((v: string) => parseOption(spec, v));
  if (shown !== undefined && !late) o.default(spec.default, shown);
  if (spec.required) o.makeOptionMandatory();
  return o;
}

/** Adds a family's CLI options to `cmd`; `notes` adds interface-specific help by key. */
export function addCliOptions(cmd: Command, family: MethodFamily, notes: Partial<Record<string, string>> = {}): Command {
  for (const spec of cliOptions(family)) cmd.addOption(cliOption(spec, notes[spec.key]));
  return cmd;
}
