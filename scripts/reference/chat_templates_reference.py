"""Renders the chat templates under fixtures/chat/ with Python's jinja2 configured as transformers'
apply_chat_template configures it (sandboxed, trim_blocks, lstrip_blocks, loop controls,
raise_exception, strftime_now, tojson without ASCII escaping), for Lantern's chat tests.

    python3 scripts/reference/chat_templates_reference.py   # writes fixtures/chat/expected-text.json

Token ids are added by scripts/reference/chat_token_ids.mjs (a tokenizer other than Lantern's)."""
import json
import os
from datetime import datetime

from jinja2.exceptions import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures', 'chat')
FAMILIES = ['llama3', 'llama3.2', 'qwen2.5', 'gemma2', 'phi3']

ONE_TURN = [{'role': 'user', 'content': 'What is the capital of France?'}]
WITH_SYSTEM = [
    {'role': 'system', 'content': 'You are a terse geography tutor.'},
    {'role': 'user', 'content': 'Name the capital of Japan.'},
    {'role': 'assistant', 'content': 'Tokyo.'},
    {'role': 'user', 'content': 'And of Italy?'},
]
NO_SYSTEM = WITH_SYSTEM[1:]
PADDED = [{'role': 'user', 'content': '  Spaces around, and a café \u2014 ok?  '}]

CASES = [
    ('one-turn', ONE_TURN, True),
    ('one-turn-no-generation-prompt', ONE_TURN, False),
    ('with-system', WITH_SYSTEM, True),
    ('multi-turn', NO_SYSTEM, True),
    ('padded', PADDED, True),
]
# Llama 3.1+ writes today's date unless given one, as callers of apply_chat_template may.
VARIABLES = {'llama3.2': {'date_string': '26 Jul 2024'}}


def raise_exception(message):
    raise TemplateError(message)


def strftime_now(fmt):
    return datetime.now().strftime(fmt)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters['tojson'] = tojson
    env.globals['raise_exception'] = raise_exception
    env.globals['strftime_now'] = strftime_now
    return env


def main():
    env = environment()
    out = []
    for family in FAMILIES:
        with open(os.path.join(ROOT, family, 'tokenizer_config.json')) as f:
            config = json.load(f)
        template = env.from_string(config['chat_template'])
        special = {k: v for k, v in config.items() if k.endswith('_token')}
        variables = VARIABLES.get(family, {})
        for name, messages, generation in CASES:
            case = {'family': family, 'case': name, 'messages': messages, 'addGenerationPrompt': generation, 'variables': variables}
            try:
                case['text'] = template.render(messages=messages, add_generation_prompt=generation, **special, **variables)
            except TemplateError as e:
                case['error'] = str(e)
            out.append(case)
    with open(os.path.join(ROOT, 'expected-text.json'), 'w') as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write('\n')


if __name__ == '__main__':
    main()
