/**
 * Rendering a Jinja template within bounds. Chat templates come with model files (tokenizer_config.json,
 * chat_template.jinja, GGUF metadata), so a broken or hostile one must not hang or exhaust the process.
 * `@huggingface/jinja` has no step limit of its own (its `range(10**9)` builds a billion-item list), so
 * this renders a parsed template with an Interpreter that counts its steps, bounds `range`, and checks
 * the size of every value it makes. Everything else is the library's, as `Template.render` does it.
 */
import { Environment as JinjaEnvironment, Interpreter, Template } from '@huggingface/jinja';

/** How much work a template may do: steps (expressions, statements and loop turns) and value sizes. */
export interface TemplateBounds {
  /** Most steps in one rendering; a `range` of n items counts as n steps. */
  steps: number;
  /** Most characters in any string the template makes, its output included. */
  chars: number;
  /** Most items in any list the template makes. */
  items: number;
}

/**
 * Default bounds: the real templates of Llama 3, Qwen 2.5, Gemma 2 and Phi-3 take 20 to 35 steps a
 * message, so half a million steps is some 15,000 turns, and 16M characters is more than any context
 * window holds; yet a template stopped at these bounds stops within about a second.
 */
export const DEFAULT_TEMPLATE_BOUNDS: TemplateBounds = { steps: 500_000, chars: 1 << 24, items: 1 << 20 };

/** A template went past its {@link TemplateBounds}; the message says which bound and how. */
export class TemplateBoundsError extends Error {
  override name = 'TemplateBoundsError';
}

// The package's index.d.ts imports its runtime's declarations without file extensions, which
// NodeNext resolution does not follow (Interpreter and Environment come through untyped), so the
// few shapes used here are declared here.
/** A runtime value of the interpreter (StringValue, ArrayValue, FunctionValue...). */
interface Value {
  type: string;
  value: unknown;
}
/** A node of a parsed template. */
interface Statement {
  type: string;
}
/** A scope of template variables. */
interface Environment {
  set(name: string, value: unknown): Value;
}
/** The interpreter's public methods. */
interface InterpreterShape {
  run(program: Statement): Value;
  evaluate(statement: Statement | undefined, environment: Environment): Value;
}
const BaseInterpreter = Interpreter as new (env: Environment) => InterpreterShape;

type Arguments = [Value[], Map<string, Value>];

/** The Interpreter's own methods that the bounds hook into (its declarations call them private). */
interface Internals {
  renderBlock(statements: Statement[], environment: Environment): string;
  applyFilter(operand: Value, filter: Statement, environment: Environment): Value;
  evaluateArguments(args: Statement[], environment: Environment): Arguments;
}

/** Filters whose output can be far larger than their inputs: the length of that output, at most. */
const GROWING_FILTERS: Record<string, (operand: Value, args: Arguments) => number> = {
  indent: (operand, [args, kwargs]) => {
    const width = args[0] ?? kwargs.get('width');
    const indent = typeof width?.value === 'number' ? width.value : typeof width?.value === 'string' ? width.value.length : 4;
    return lengthOf(operand) * (indent + 1);
  },
  replace: (operand, [args, kwargs]) => {
    const [old, replacement] = [args[0] ?? kwargs.get('old'), args[1] ?? kwargs.get('new')];
    const matches = lengthOf(old) === 0 ? lengthOf(operand) + 1 : lengthOf(operand) / lengthOf(old);
    return lengthOf(operand) + matches * lengthOf(replacement);
  },
  join: (operand, [args, kwargs]) => {
    // A number or other non-string item prints in a few characters; 20 is more than enough.
    const content = Array.isArray(operand.value) ? operand.value.reduce((sum: number, item: Value) => sum + (lengthOf(item) || 20), 0) : lengthOf(operand);
    return content + lengthOf(operand) * lengthOf(args[0] ?? kwargs.get('separator'));
  },
};

function lengthOf(value: Value | undefined): number {
  return typeof value?.value === 'string' || Array.isArray(value?.value) ? value.value.length : 0;
}

class BoundedInterpreter extends BaseInterpreter {
  private steps = 0;

  constructor(
    env: Environment,
    private readonly bounds: TemplateBounds,
  ) {
    super(env);
    // A loop turn over an empty body evaluates nothing, so loop turns are counted where each body is rendered.
    const self = this as unknown as Internals;
    const renderBlock = self.renderBlock.bind(this);
    self.renderBlock = (statements, environment) => {
      this.step();
      return renderBlock(statements, environment);
    };
    // A filter evaluates its own arguments; the growing ones are checked between that and their work.
    const filtering: { name: string; operand: Value }[] = [];
    const applyFilter = self.applyFilter.bind(this);
    self.applyFilter = (operand, filter, environment) => {
      const name = filter.type === 'CallExpression' ? ((filter as unknown as { callee: { value: unknown } }).callee.value as string) : '';
      filtering.push({ name, operand });
      try {
        return applyFilter(operand, filter, environment);
      } finally {
        filtering.pop();
      }
    };
    const evaluateArguments = self.evaluateArguments.bind(this);
    self.evaluateArguments = (args, environment) => {
      const evaluated = evaluateArguments(args, environment);
      const top = filtering.at(-1);
      const bound = top && Object.hasOwn(GROWING_FILTERS, top.name) ? GROWING_FILTERS[top.name](top.operand, evaluated) : 0;
      if (bound > this.bounds.chars) throw new TemplateBoundsError(`its ${top!.name} filter would make up to ${Math.round(bound)} characters, more than the ${this.bounds.chars} allowed`);
      return evaluated;
    };
  }

  /** Counts one step; throws once there have been more than the bounds allow. */
  step(count = 1): void {
    this.steps += count;
    if (this.steps > this.bounds.steps) {
      throw new TemplateBoundsError(`it takes more than ${this.bounds.steps} steps (a loop that runs too long, or endless recursion)`);
    }
  }

  /** Member expressions being evaluated, innermost last: the object (`s` in `s.replace`) and its value once known. */
  private readonly members: { object: Statement; value?: Value }[] = [];

  override evaluate(statement: Statement | undefined, environment: Environment): Value {
    this.step();
    let value: Value;
    if (statement?.type === 'MemberExpression') {
      const member = { object: (statement as unknown as { object: Statement }).object, value: undefined as Value | undefined };
      this.members.push(member);
      try {
        const found = super.evaluate(statement, environment);
        value = this.boundedMethod(found, member.value);
      } finally {
        this.members.pop();
      }
    } else {
      value = super.evaluate(statement, environment);
    }
    const member = this.members.at(-1);
    if (member && member.object === statement && member.value === undefined) member.value = value;
    if (typeof value.value === 'string' && value.value.length > this.bounds.chars) {
      throw new TemplateBoundsError(`it makes a string of ${value.value.length} characters, more than the ${this.bounds.chars} allowed`);
    }
    if (Array.isArray(value.value) && value.value.length > this.bounds.items) {
      throw new TemplateBoundsError(`it makes a list of ${value.value.length} items, more than the ${this.bounds.items} allowed`);
    }
    return value;
  }

  /** A string's `replace` method (as `s.replace(a, b)`) checks the size of its result before making it, as the filter does. */
  private boundedMethod(method: Value, object: Value | undefined): Value {
    if (method.type !== 'FunctionValue' || object?.type !== 'StringValue') return method;
    const builtins = (object as unknown as { builtins: Map<string, Value> }).builtins;
    if (builtins.get('replace') !== method) return method;
    const call = method.value as (args: Value[], scope: Environment) => Value;
    const bounded = (args: Value[], scope: Environment) => {
      const bound = GROWING_FILTERS.replace(object, splitArguments(args));
      if (bound > this.bounds.chars) throw new TemplateBoundsError(`its replace method would make up to ${Math.round(bound)} characters, more than the ${this.bounds.chars} allowed`);
      return call(args, scope);
    };
    return Object.assign(Object.create(Object.getPrototypeOf(method)) as Value, method, { value: bounded });
  }
}

/** Filters' estimates take positional and keyword arguments apart; methods get the keywords as a last argument. */
function splitArguments(args: Value[]): Arguments {
  const last = args.at(-1);
  return last?.type === 'KeywordArgumentsValue' ? [args.slice(0, -1), last.value as Map<string, Value>] : [args, new Map()];
}

/** Python's range(), refusing lists longer than `items` and charging their length as steps. */
function boundedRange(interpreter: BoundedInterpreter, items: number) {
  return (start: number, stop?: number, step = 1): number[] => {
    if (stop === undefined) [start, stop] = [0, start];
    if (![start, stop, step].every(Number.isInteger)) throw new Error('range() takes integers');
    if (step === 0) throw new Error('range() step must not be zero');
    const length = Math.max(0, Math.ceil((stop - start) / step));
    if (length > items) throw new TemplateBoundsError(`range(${start}, ${stop}, ${step}) has ${length} items, more than the ${items} allowed`);
    interpreter.step(length);
    return Array.from({ length }, (_, i) => start + i * step);
  };
}

/** `strftime_now` as the library defines it; it does not export its globals, so a template of its own supplies it. */
const strftimeTemplate = new Template('{{ strftime_now(format) }}');

/**
 * Renders a parsed template with `variables`, as `Template.render` does (same globals, same
 * semantics), but throws a {@link TemplateBoundsError} once it goes past `bounds` instead of running
 * on; JavaScript's own stack overflow (deep recursion) is reported the same way.
 */
export function renderBounded(template: Template, variables: Record<string, unknown>, bounds: TemplateBounds = DEFAULT_TEMPLATE_BOUNDS): string {
  const env: Environment = new JinjaEnvironment();
  const interpreter = new BoundedInterpreter(env, bounds);
  const globals: Record<string, unknown> = {
    false: false,
    true: true,
    none: null,
    False: false,
    True: true,
    None: null,
    raise_exception: (message: string) => {
      throw new Error(message);
    },
    range: boundedRange(interpreter, bounds.items),
    strftime_now: (format: string) => strftimeTemplate.render({ format }),
  };
  // Like Template.render: a variable named as a global is an error, so none replaces the bounded range.
  for (const [name, value] of [...Object.entries(globals), ...Object.entries(variables)]) env.set(name, value);
  try {
    return interpreter.run(template.parsed).value as string;
  } catch (e) {
    if (e instanceof RangeError && /call stack/i.test(e.message)) throw new TemplateBoundsError('it recurses too deeply');
    if (e instanceof RangeError && /string length/i.test(e.message)) throw new TemplateBoundsError('it makes a string longer than JavaScript allows');
    throw e;
  }
}
