#!/usr/bin/env python3
"""Writes chat_templates.json: what transformers' apply_chat_template renders for every template in templates/
and every conversation below, or the error it raises.

jinja2 is configured exactly as transformers configures it (src/transformers/utils/chat_template_utils.py,
_compile_jinja_template and _render_with_assistant_indices): an ImmutableSandboxedEnvironment with trim_blocks,
lstrip_blocks, the AssistantTracker {% generation %} extension and jinja2.ext.loopcontrols; tojson replaced by
json.dumps(x, ensure_ascii=False, indent=..., separators=..., sort_keys=...); raise_exception and strftime_now as
globals; render(messages=..., tools=..., documents=..., add_generation_prompt=..., **special_tokens, **kwargs).
strftime_now formats a fixed instant (FIXED_NOW) so that the file is reproducible; palign's test passes the same
instant through ChatTemplateOptions::fixed_time.

Used only to make fixtures, never by the build or the tests. Run from anywhere with a Python that has jinja2 >= 3.1:
    python3 tests/data/chat_templates/make_fixtures.py
"""

import datetime
import importlib.metadata
import json
import pathlib
import platform

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = pathlib.Path(__file__).resolve().parent
LIBRARY = {"python": platform.python_version(), "jinja2": jinja2.__version__,
           "markupsafe": importlib.metadata.version("markupsafe")}
FIXED_NOW = datetime.datetime(2025, 3, 14, 9, 26, 53)

LLAMA_CPP_TEST = "ggml-org/llama.cpp@03f94f19a2c4c9d039fa1a84838fe3e2110cc28d:tests/test-chat-template.cpp"

# name -> where the source came from and the model's special tokens (tokenizer_config.json). A token of None is left
# out of the render call, as transformers leaves out special tokens a tokenizer does not have.
TEMPLATES = {
    "meta-llama-Llama-3.2-3B-Instruct": {
        "source": "ggerganov/llama.cpp@7b5e0803c84435e8005725d8f9ddceb5d1820443:"
                  "models/templates/meta-llama-Llama-3.2-3B-Instruct.jinja",
        "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
    },
    "meta-llama-Llama-3.3-70B-Instruct": {
        "source": "ye-NX/llama.cpp@b354d7c9ecb76c97c07098617cdebbdfffa2583e (a mirror of ggml-org/llama.cpp):"
                  "models/templates/meta-llama-Llama-3.3-70B-Instruct.jinja",
        "note": "Llama-3.1-8B/70B-Instruct ship the same template",
        "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
    },
    "NousResearch-Hermes-3-Llama-3.1-8B-tool_use": {
        "source": "ye-NX/llama.cpp@b354d7c9ecb76c97c07098617cdebbdfffa2583e:"
                  "models/templates/NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja",
        "bos_token": "<|begin_of_text|>", "eos_token": "<|im_end|>",
    },
    "Qwen-Qwen3-0.6B": {
        "source": "ye-NX/llama.cpp@b354d7c9ecb76c97c07098617cdebbdfffa2583e:models/templates/Qwen-Qwen3-0.6B.jinja",
        "bos_token": None, "eos_token": "<|im_end|>",
    },
    "Qwen-QwQ-32B": {
        "source": "ye-NX/llama.cpp@b354d7c9ecb76c97c07098617cdebbdfffa2583e:models/templates/Qwen-QwQ-32B.jinja",
        "note": "the Qwen2.5 template with <think> handling",
        "bos_token": None, "eos_token": "<|im_end|>",
    },
    "Qwen-Qwen3-Coder-30B-A3B-Instruct": {
        "source": "acproject/seq2seq_llama.cpp@6626e786afc71be2514e584ca545834293d6e93d:models/templates/Qwen3-Coder.jinja",
        "bos_token": None, "eos_token": "<|im_end|>",
    },
    "mistralai-Mistral-Nemo-Instruct-2407": {
        "source": "ggerganov/llama.cpp@7b5e0803c84435e8005725d8f9ddceb5d1820443:"
                  "models/templates/mistralai-Mistral-Nemo-Instruct-2407.jinja",
        "bos_token": "<s>", "eos_token": "</s>",
    },
    "mistralai-Mistral-Small-3.2-24B-Instruct-2506": {
        "source": "ye-NX/llama.cpp@b354d7c9ecb76c97c07098617cdebbdfffa2583e:"
                  "models/templates/Mistral-Small-3.2-24B-Instruct-2506.jinja",
        "bos_token": "<s>", "eos_token": "</s>",
    },
    "google-gemma-2-2b-it": {
        "source": "ye-NX/llama.cpp@b354d7c9ecb76c97c07098617cdebbdfffa2583e:models/templates/google-gemma-2-2b-it.jinja",
        "bos_token": "<bos>", "eos_token": "<eos>",
    },
    "google-gemma-7b-it": {
        "source": LLAMA_CPP_TEST + " (test case 'google/gemma-7b-it')",
        "bos_token": "<bos>", "eos_token": "<eos>",
    },
    "microsoft-Phi-3.5-mini-instruct": {
        "source": "ggerganov/llama.cpp@7b5e0803c84435e8005725d8f9ddceb5d1820443:"
                  "models/templates/microsoft-Phi-3.5-mini-instruct.jinja",
        "bos_token": "<s>", "eos_token": "<|endoftext|>",
    },
    "microsoft-phi-4": {
        "source": LLAMA_CPP_TEST + " (test case 'phi-4')",
        "bos_token": "<|endoftext|>", "eos_token": "<|im_end|>",
    },
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B": {
        "source": "ggml-org/llama.cpp@20bdc4fac4e8779e5b73646f4b3b24a9964aa566:"
                  "models/templates/deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja",
        "bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>",
    },
    "deepseek-ai-DeepSeek-R1-Distill-Llama-8B": {
        "source": "acproject/seq2seq_llama.cpp@6626e786afc71be2514e584ca545834293d6e93d (a mirror of ggml-org/llama.cpp):"
                  "models/templates/deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja",
        "bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>",
    },
    "deepseek-ai-DeepSeek-V3.1": {
        "source": "ye-NX/llama.cpp@b354d7c9ecb76c97c07098617cdebbdfffa2583e:models/templates/deepseek-ai-DeepSeek-V3.1.jinja",
        "bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>",
    },
    "HuggingFaceTB-SmolLM3-3B": {
        "source": "acproject/seq2seq_llama.cpp@6626e786afc71be2514e584ca545834293d6e93d:"
                  "models/templates/HuggingFaceTB-SmolLM3-3B.jinja",
        "note": "the Unsloth-edited SmolLM3 template that llama.cpp mirrors",
        "bos_token": None, "eos_token": "<|im_end|>",
    },
    "ibm-granite-granite-3.3-2B-Instruct": {
        "source": "ye-NX/llama.cpp@b354d7c9ecb76c97c07098617cdebbdfffa2583e:"
                  "models/templates/ibm-granite-granite-3.3-2B-Instruct.jinja",
        "bos_token": "<|end_of_text|>", "eos_token": "<|end_of_text|>",
    },
    "canonical-chatml": {
        "source": "palign's chat_templates.json version 1 (the ChatML template of e.g. teknium/OpenHermes-2.5)",
        "bos_token": None, "eos_token": None,
    },
    "canonical-llama3": {
        "source": "palign's chat_templates.json version 1 (Meta-Llama-3-8B-Instruct's template)",
        "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
    },
    "canonical-mistral": {
        "source": "palign's chat_templates.json version 1 (Mistral-7B-Instruct-v0.1's template)",
        "bos_token": "<s>", "eos_token": "</s>",
    },
    "canonical-gemma": {
        "source": "palign's chat_templates.json version 1 (a gemma-style template without role checks)",
        "bos_token": "<bos>", "eos_token": "<eos>",
    },
}


def sys_(content):
    return {"role": "system", "content": content}


def user(content):
    return {"role": "user", "content": content}


def asst(content):
    return {"role": "assistant", "content": content}


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city, e.g. Paris"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Unit"},
                "days": {"type": "integer", "description": "Forecast days"},
                "hours": {"type": "array", "items": {"type": "number"}, "description": "Hours of the day"},
            },
            "required": ["city"],
        },
        "return": {"type": "object", "description": "Temperature and sky, e.g. {\"temperature\": 18.5}"},
    },
}


def tool_call(arguments, content=""):
    message = {"role": "assistant", "content": content,
               "tool_calls": [{"id": "call12345", "type": "function",
                               "function": {"name": "get_weather", "arguments": arguments}}]}
    if content is None:
        del message["content"]
    return message


# A parameter of two types: Hermes-3's json_to_python_type recurses without end on it (RecursionError in jinja2).
UNION_TOOL = {"type": "function", "function": {
    "name": "set_unit", "description": "Set the unit.",
    "parameters": {"type": "object", "properties": {"unit": {"type": ["string", "null"], "description": "Unit"}}}}}


TOOL_RESULT = {"role": "tool", "tool_call_id": "call12345", "name": "get_weather",
               "content": "{\"temperature\": 18.5, \"sky\": \"clear\"}"}
WEATHER_QUESTION = "What's the weather in Paris, in °C?"

TOOL_TEMPLATES = [name for name in TEMPLATES if "tool" in (HERE / "templates" / (name + ".jinja")).read_text()]
LLAMA = ["meta-llama-Llama-3.2-3B-Instruct", "meta-llama-Llama-3.3-70B-Instruct"]

# name -> messages, optional tools / extra template kwargs ("context"), which add_generation_prompt values to render
# ("generation", default [True]) and which templates ("templates", default all).
CONVERSATIONS = {
    "user_only": {"messages": [user("Hello!")], "generation": [True, False]},
    "system_user": {"messages": [sys_("You are a terse assistant."), user("What is the capital of France?")],
                    "generation": [True, False]},
    "multi_turn": {"messages": [user("Hi there"), asst("Hello! How can I help you today?"), user("Tell me a joke.")],
                   "generation": [True, False]},
    "system_multi_turn": {"messages": [sys_("You answer in one sentence."), user("Name a planet."), asst("Mars."),
                                       user("Another one?"), asst("Venus."), user("And a moon?")]},
    "ends_with_assistant": {"messages": [user("Say hi."), asst("Hi!")], "generation": [False, True]},
    "empty_user": {"messages": [user("")]},
    "empty_system": {"messages": [sys_(""), user("Hi")]},
    "empty_assistant": {"messages": [user("Hi"), asst(""), user("Still there?")]},
    "unicode": {"messages": [sys_("Réponds en français, s'il te plaît. ☕"),
                             user("Grüße aus Köln 👋 — 你好，世界！ naïve café"),
                             asst("¡Hola! 😀 Ελληνικά · ½ ≠ ∞"),
                             user("emoji 🧑‍💻🏳️‍🌈, \"quotes\", 'apostrophes', back\\slash, tab\there")]},
    "whitespace": {"messages": [sys_("  padded system prompt \n"), user("\n\n  leading and trailing whitespace \t\n"),
                                asst("  spaced answer  "), user(" again\u00a0")]},
    "think_tags": {"messages": [user("What is 1+1?"), asst("<think>\nOne plus one is two.\n</think>\n\n2"),
                                user("And 2+2?")]},
    "reasoning_content": {"messages": [user("What is 1+1?"),
                                       {"role": "assistant", "content": "2", "reasoning_content": "1+1 is 2."},
                                       user("And 2+2?"),
                                       {"role": "assistant", "content": "4", "reasoning_content": "2+2 is 4."}],
                          "generation": [False],
                          "templates": ["Qwen-Qwen3-0.6B", "Qwen-QwQ-32B"]},
    "tools_available": {"messages": [sys_("Use tools when needed."), user(WEATHER_QUESTION)], "tools": [WEATHER_TOOL],
                        "templates": TOOL_TEMPLATES},
    "tool_call_dict_arguments": {
        "messages": [user(WEATHER_QUESTION), tool_call({"city": "Paris", "unit": "celsius"}), TOOL_RESULT,
                     asst("It is 18.5 °C and clear in Paris.")],
        "tools": [WEATHER_TOOL], "templates": TOOL_TEMPLATES},
    "tool_call_string_arguments": {
        "messages": [user(WEATHER_QUESTION), tool_call("{\"city\": \"Paris\", \"unit\": \"celsius\"}"), TOOL_RESULT,
                     asst("It is 18.5 °C and clear in Paris.")],
        "tools": [WEATHER_TOOL], "templates": TOOL_TEMPLATES},
    "tool_call_without_content": {
        "messages": [user(WEATHER_QUESTION), tool_call({"city": "Paris"}, content=None), TOOL_RESULT],
        "tools": [WEATHER_TOOL], "templates": TOOL_TEMPLATES},
    "tools_union_type": {"messages": [user("Use celsius.")], "tools": [UNION_TOOL],
                         "templates": ["NousResearch-Hermes-3-Llama-3.1-8B-tool_use", "Qwen-Qwen3-0.6B"]},
    "enable_thinking_false": {"messages": [user("Hi"), asst("Hello."), user("Quick: 3*3?")],
                              "context": {"enable_thinking": False},
                              "templates": ["Qwen-Qwen3-0.6B", "HuggingFaceTB-SmolLM3-3B"]},
    "smollm_no_think_system": {"messages": [sys_("Be brief. /no_think"), user("Hi")],
                               "templates": ["HuggingFaceTB-SmolLM3-3B"]},
    "llama_date_string": {"messages": [user("What day is it?")], "context": {"date_string": "01 Jan 2025"},
                          "templates": LLAMA},
    "llama_tools_in_system": {"messages": [user(WEATHER_QUESTION)], "tools": [WEATHER_TOOL],
                              "context": {"tools_in_user_message": False}, "templates": LLAMA},
    "llama_builtin_tools": {
        "messages": [sys_("Search when unsure."), user("Who won?"),
                     {"role": "assistant", "tool_calls": [{"type": "function", "function": {
                         "name": "brave_search", "arguments": {"query": "who won", "count": "3"}}}]},
                     {"role": "ipython", "content": {"results": ["A", "B"]}}],
        "context": {"builtin_tools": ["brave_search", "code_interpreter", "wolfram_alpha"]},
        "templates": ["meta-llama-Llama-3.3-70B-Instruct"]},
    "granite_documents": {
        "messages": [user("What does the document say?")],
        "context": {"documents": [{"doc_id": 1, "text": "Paris is the capital of France."},
                                  {"doc_id": "b", "text": "Köln liegt am Rhein."}],
                    "controls": {"citations": True, "length": "short"}},
        "templates": ["ibm-granite-granite-3.3-2B-Instruct"]},
    "deepseek_thinking": {"messages": [user("Think about it."), asst("<think>hmm</think>Done."), user("Again?")],
                          "context": {"thinking": True},
                          "templates": ["deepseek-ai-DeepSeek-V3.1"]},
    "granite_thinking": {"messages": [user("Think first.")], "context": {"thinking": True},
                         "templates": ["ibm-granite-granite-3.3-2B-Instruct"]},
    # Conversations most templates reject; each renders or fails exactly as in transformers.
    "no_messages": {"messages": []},
    "two_user_turns": {"messages": [user("a"), user("b")]},
    "starts_with_assistant": {"messages": [asst("I start."), user("ok")]},
    "late_system": {"messages": [user("a"), asst("b"), sys_("c"), user("d")]},
    "unknown_role": {"messages": [{"role": "robot", "content": "beep"}]},
    "null_content": {"messages": [user(None)]},
    "list_content": {"messages": [{"role": "user", "content": [{"type": "text", "text": "Describe: "},
                                                               {"type": "image_url", "image_url": {"url": "x"}}]}],
                     "templates": ["mistralai-Mistral-Small-3.2-24B-Instruct-2506", "canonical-chatml"]},
    "bad_tool_call_id": {"messages": [user(WEATHER_QUESTION),
                                      {"role": "assistant", "tool_calls": [{"id": "x", "type": "function", "function": {
                                          "name": "get_weather", "arguments": {"city": "Paris"}}}]}],
                         "templates": ["mistralai-Mistral-Nemo-Instruct-2407",
                                       "mistralai-Mistral-Small-3.2-24B-Instruct-2506"]},
}


# Micro-cases for tests/runtime/jinja_test.cpp: (name, template, context). Each is rendered like the chat templates
# (same environment, context passed as render kwargs) into jinja_cases.json, with the output or the error.
J = [
    # Whitespace control, trim_blocks and lstrip_blocks.
    ("ws_trim_blocks", "{% if true %}\nA\n{% endif %}\nB", {}),
    ("ws_lstrip_blocks", "x\n    {% if true %}\n    y\n    {% endif %}\nz", {}),
    ("ws_lstrip_not_variables", "x\n    {{ 1 }}\n", {}),
    ("ws_minus_both_sides", "a   {%- if true -%}   b   {%- endif -%}   c", {}),
    ("ws_minus_variable", "a \n {{- 'b' -}} \n c", {}),
    ("ws_plus_keeps_lstrip", "x\n    {%+ if true %}y{% endif %}", {}),
    ("ws_plus_end_keeps_newline", "{% if true +%}\ny{% endif %}", {}),
    ("ws_comment_trim", "a\n  {# note #}\nb{#- strip -#}   c", {}),
    ("ws_trailing_newline_dropped", "line\n", {}),
    ("ws_two_trailing_newlines", "line\n\n", {}),
    ("ws_crlf", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc", {}),
    ("ws_raw", "{% raw %}{{ not rendered }}{% endraw %}", {}),
    ("ws_unicode_space_minus", "a\u3000\u00a0{{- 'b' }}", {}),
    ("ws_line_starting_after_block", "{% if true %}\n  {% if true %}\n  x\n  {% endif %}\n{% endif %}", {}),
    # Literals and Python str() of values.
    ("lit_numbers", "{{ 1 }} {{ -2 }} {{ 1.0 }} {{ 1.5e3 }} {{ 1e16 }} {{ 1e-5 }} {{ 0.0001 }} {{ 0x1F }} {{ 1_000 }} {{ 0.1 + 0.2 }}", {}),
    ("lit_consts", "{{ true }} {{ True }} {{ false }} {{ none }} {{ None }}", {}),
    ("lit_strings", "{{ 'a\\tb' }}|{{ \"it's\" }}|{{ 'x' 'y' }}|{{ '\\u00e9\\x41\\n' }}|{{ 'back\\\\slash' }}", {}),
    ("lit_list_repr", "{{ [1, 'a', none, true, 1.5, [2], {'k': 'v'}] }}", {}),
    ("lit_tuple_repr", "{{ (1,) }} {{ (1, 'b') }} {{ () }}", {}),
    ("lit_dict_repr", "{{ {'a': 1, 'b': \"it's\", 3: none} }}", {}),
    ("lit_repr_quotes", "{{ [\"it's\", 'say \"hi\"', 'both \\' \"', 'tab\\there', '\\x01', 'é😀'] }}", {}),
    ("lit_repr_nonprintable", "{{ ['\\u00a0', '\\u200b', '\\u2028'] }}", {}),
    ("lit_context_values", "{{ d }} {{ d.f }} {{ d.n }} {{ d.l }}", {"d": {"f": 2.0, "n": None, "l": [1, "x"], "b": False}}),
    # Arithmetic and operators.
    ("op_arith", "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 7 / 2 }} {{ 6 / 3 }} {{ 2 ** 3 ** 2 }}", {}),
    ("op_float_arith", "{{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 1 + 1.0 }} {{ true + 1 }} {{ 10 / 4 }}", {}),
    ("op_strings", "{{ 'ab' + 'cd' }} {{ 'ab' * 3 }} {{ 3 * 'x' }} {{ 'a' ~ 1 ~ none ~ true }} {{ [1] + [2] }} {{ [0] * 2 }}", {}),
    ("op_unary", "{{ -(3) }} {{ - 2 ** 2 }} {{ -'1'|int }} {{ not true }} {{ not none }}", {}),
    ("op_compare", "{{ 1 < 2 < 3 }} {{ 1 < 3 < 2 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 == 1.0 }} {{ 1 == true }} {{ 'a' != 'a' }} {{ 2 >= 2 }} {{ 2 <= 1 }}", {}),
    ("op_in", "{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'z' not in 'abc' }} {{ 3 not in [3] }} {{ 'x' in undefined_name }}", {}),
    ("op_and_or_values", "{{ 0 or 'x' }} {{ 'a' and 'b' }} {{ '' and 'b' }}|{{ none or none }} {{ [] or [1] }}", {}),
    ("op_ternary", "{{ 'y' if 1 else 'n' }} {{ 'y' if 0 else 'n' }} [{{ 'y' if 0 }}] {{ 'a' if false else 'b' if false else 'c' }}", {}),
    ("op_percent", "{{ '%s and %s' % ('a', 1) }} {{ '%d%%' % 50 }} {{ '%5.2f|%-4s|%04d|%x' % (3.14159, 'ab', 7, 255) }} {{ '%s' % [1] }} {{ '%(k)s' % {'k': 'v'} }} {{ '%r' % 'q' }}", {}),
    ("op_precedence", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 'a' ~ 1 * 2 }} {{ not 1 == 2 }} {{ -3|abs }} {{ 2 * 3|string }}", {}),
    ("op_concat_binds_tighter_than_plus", "{{ 'a' ~ 1 + 2 }}", {}),
    # Attribute and item access, slicing.
    ("access_attr_item", "{{ m.role }} {{ m['role'] }} {{ m.get('role') }} {{ m.get('x', 'dflt') }} {{ m.get('x') }} {{ l[0] }} {{ l[-1] }} {{ l.0 }} {{ 'hé!'[1] }}", {"m": {"role": "user"}, "l": [1, 2, 3]}),
    ("access_missing", "[{{ m.nope }}][{{ m['nope'] }}][{{ l[10] }}][{{ s[9] }}][{{ none_value.x }}]", {"m": {}, "l": [1], "s": "ab", "none_value": None}),
    ("access_method_shadows_key", "{{ m['items'] }}|{{ m.keys() | list }}", {"m": {"items": "key wins"}}),
    ("access_key_named_like_a_method", "{{ p['items']['type'] }} {{ 'content' in m }} {{ 'x' not in m }} {% for x in ms %}{{ ms[loop.index:]|length }}{% endfor %}", {"p": {"items": {"type": "string"}}, "m": {"content": None}, "ms": [1, 2, 3]}),
    ("access_slices", "{{ l[1:] }} {{ l[:2] }} {{ l[::-1] }} {{ l[::2] }} {{ l[-2:] }} {{ l[1:-1] }} {{ l[5:] }} {{ l[::-2] }} {{ l[3:0:-1] }}", {"l": [0, 1, 2, 3, 4]}),
    ("access_str_slices", "{{ s[::-1] }} {{ s[1:3] }} {{ s[:-1] }} {{ s[-1:] }}", {"s": "héllo😀"}),
    ("access_tuple_slice", "{{ (1, 2, 3)[1:] }}", {}),
    # Tests.
    ("tests_types", "{{ x is string }} {{ x is number }} {{ 1 is integer }} {{ 1.0 is float }} {{ true is boolean }} {{ true is number }} {{ true is integer }} {{ none is none }} {{ {} is mapping }} {{ [] is sequence }} {{ 'a' is iterable }} {{ 1 is iterable }} {{ nope is iterable }} {{ nope is sequence }}", {"x": "s"}),
    ("tests_defined", "{{ x is defined }} {{ y is defined }} {{ y is undefined }} {{ x.z is defined }} {{ x is not defined }}", {"x": {}}),
    ("tests_values", "{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(2) }} {{ 'a' is eq 'a' }} {{ 1 is equalto 2 }} {{ true is true }} {{ 1 is true }} {{ false is false }} {{ 1 is ne 2 }} {{ 2 is gt 1 }} {{ 2 is lt 1 }} {{ 2 is ge 2 }} {{ 'a' is in 'abc' }} {{ 'ab' is lower }} {{ 'AB' is upper }} {{ none is sameas none }}", {}),
    ("tests_callable", "{{ range is callable }} {{ 'x'.upper is callable }} {{ 1 is callable }} {{ 'upper' is filter }} {{ 'odd' is test }}", {}),
    # Statements.
    ("if_elif_else", "{% for x in [1, 2, 3] %}{% if x == 1 %}one{% elif x == 2 %}two{% else %}many{% endif %};{% endfor %}", {}),
    ("for_loop_vars", "{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }}|{% endfor %}", {}),
    ("for_else", "{% for x in [] %}x{% else %}empty{% endfor %}{% for x in [1] %}{{ x }}{% else %}no{% endfor %}", {}),
    ("for_filter", "{% for x in range(10) if x is odd %}{{ x }}{{ loop.index }}{{ loop.length }} {% endfor %}", {}),
    ("for_unpack", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k, v in d|items %}{{ k }}:{{ v }};{% endfor %}{% for a, b in [[1, 2], (3, 4)] %}{{ a + b }}{% endfor %}", {"d": {"z": 1, "a": 2}}),
    ("for_dict_and_string", "{% for k in d %}{{ k }}{% endfor %}|{% for c in 'hé' %}[{{ c }}]{% endfor %}", {"d": {"b": 1, "a": 2}}),
    ("for_nested_loop", "{% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}{% endfor %}", {}),
    ("for_break_continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("for_cycle_changed", "{% for x in [1, 1, 2] %}{{ loop.cycle('a', 'b') }}{{ loop.changed(x) }} {% endfor %}", {}),
    ("scope_set_in_loop", "{% set count = 0 %}{% for i in range(3) %}{% set count = count + 1 %}{{ count }}{% endfor %}{{ count }}", {}),
    ("scope_set_in_if", "{% if true %}{% set z = 3 %}{% endif %}{{ z }}", {}),
    ("scope_loop_var_gone", "{% for x in [1, 2] %}{% set q = x %}{% endfor %}[{{ q }}][{{ x }}]", {}),
    ("scope_iteration_fresh", "{% for i in range(3) %}{% if i == 0 %}{% set y = 5 %}{% endif %}[{{ y }}]{% endfor %}", {}),
    ("namespace", "{% set ns = namespace(n=0, found=false) %}{% for x in [1, 2, 3] %}{% set ns.n = ns.n + x %}{% if x == 2 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.n }} {{ ns.found }} {{ ns }}", {}),
    ("namespace_dict_arg", "{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}{{ ns['a'] }}{{ ns.c is defined }}", {}),
    ("set_tuple_and_block", "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = 1, 2 %}{{ t }}{% set blk %}  in {{ a }}  {% endset %}[{{ blk }}]{% set f | trim | upper %}  x  {% endset %}[{{ f }}]", {}),
    ("set_overrides_context", "{% set messages = messages[1:] %}{{ messages | length }}", {"messages": [1, 2, 3]}),
    ("macro_defaults", "{% macro greet(name, greeting='Hello', punct='!') %}{{ greeting }}, {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }} {{ greet('Bo', 'Hi') }} {{ greet(name='Cy', punct='?') }} [{{ greet() }}]", {}),
    ("macro_scope", "{% set g = 1 %}{% macro m() %}{% set g = 9 %}{{ g }}{{ h }}{% endmacro %}{% set h = 2 %}{{ m() }}{{ g }}", {}),
    ("macro_recursive", "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}{{ fact(5) }}", {}),
    ("macro_varargs_kwargs", "{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, k='v') }}", {}),
    ("macro_call_block", "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold {{ 1 + 1 }}{% endcall %}{% macro each(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}{% endmacro %}{% call(x) each([1, 2]) %}[{{ x }}]{% endcall %}", {}),
    ("macro_set_in_loop_stays_in_loop", "{% macro m(spec) %}{% set has = false %}{% for v in spec %}{% if v == 1 %}{% set has = true %}{% endif %}{% endfor %}{{ has }}{% endmacro %}{{ m([1, 2]) }}", {}),
    ("macro_repr", "{% macro m() %}{% endmacro %}{{ m }} {{ m.name }}", {}),
    ("filter_block", "{% filter upper %}shout {{ 'it' }}{% endfilter %}{% filter indent(2, true) %}a\nb{% endfilter %}", {}),
    ("with_block", "{% set a = 1 %}{% with a = 2, b = a %}{{ a }}{{ b }}{% endwith %}{{ a }}", {}),
    ("generation_block", "{% for m in msgs %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% set inner = 1 %}{% endgeneration %}{% else %}{{ m.content }}{% endif %};{% endfor %}[{{ inner }}]", {"msgs": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}),
    ("print_stmt", "{% print 'a', 1 %}", {}),
    # Filters.
    ("f_trim_case", "[{{ '  x y \\n'|trim }}][{{ 'xxhixx'|trim('x') }}]{{ 'hello WORLD'|upper }}{{ 'Hello'|lower }}{{ 'hello WORLD'|capitalize }}{{ 'hello wORLD-foo(bar) x_y'|title }}", {}),
    ("f_length", "{{ 'héllo'|length }} {{ [1, 2]|count }} {{ {'a': 1}|length }} {{ nope|length }}", {}),
    ("f_default", "{{ nope|default('d') }} {{ ''|default('d') }} {{ ''|default('d', true) }} {{ none|d('x', boolean=true) }} {{ 0|default(5) }} {{ nope|d }}", {}),
    ("f_join_map", "{{ [1, 2, 3]|join(', ') }} {{ ms|map(attribute='role')|join('/') }} {{ ['a', 'b']|map('upper')|list }} {{ ms|map(attribute='x', default='?')|list }} {{ ms|join(',', attribute='role') }}", {"ms": [{"role": "user"}, {"role": "assistant"}]}),
    ("f_select_reject", "{{ [1, 2, 3, 4]|select('odd')|list }} {{ [1, 2, 3, 4]|reject('odd')|list }} {{ [0, 1, '', 'a']|select|list }} {{ ['a', 'code', 'b']|reject('equalto', 'code')|join(', ') }} {{ [1, 5, 9]|select('gt', 4)|list }}", {}),
    ("f_selectattr", "{{ ms|selectattr('role', 'equalto', 'user')|map(attribute='content')|list }} {{ ms|rejectattr('role', 'eq', 'user')|list|length }} {{ ms|selectattr('flag')|list|length }} {{ ms|selectattr('meta.n', 'gt', 1)|list|length }}", {"ms": [{"role": "user", "content": "a", "meta": {"n": 1}}, {"role": "assistant", "content": "b", "flag": True, "meta": {"n": 2}}]}),
    ("f_first_last", "{{ [3, 4]|first }} {{ [3, 4]|last }} {{ 'abc'|first }} {{ 'abc'|last }} [{{ []|first }}] {{ {'k': 1, 'j': 2}|first }}", {}),
    ("f_tojson", "{{ v|tojson }}|{{ v|tojson(indent=2) }}|{{ v|tojson(indent='\\t') }}|{{ v|tojson(separators=(',', ':')) }}|{{ v|tojson(sort_keys=true) }}|{{ v|tojson(ensure_ascii=true) }}", {"v": {"z": "é😀\n\"q\"\\", "a": [1, 2.5, None, True, {}], "m": [], "n": -0.0, "e": 1e-7}}),
    ("f_tojson_indent_zero", "{{ {'a': [1]}|tojson(indent=0) }}|{{ [1, [2]]|tojson(indent=1) }}|{{ 'x'|tojson }}|{{ 3|tojson }}|{{ none|tojson }}|{{ (1, 2)|tojson }}|{{ {1: 'i', none: 'n', true: 't', 1.5: 'f'}|tojson }}", {}),
    ("f_items_list", "{{ d|items|list }} {{ d.items()|list }} {{ d.keys()|list }} {{ d.values()|list }} {{ 'ab'|list }} {{ d|list }} {{ d.items() }} {{ d.keys() }}", {"d": {"a": 1, "b": 2}}),
    ("f_replace_string", "{{ 'aaa'|replace('a', 'b', 2) }} {{ 'abc'|replace('', '-') }} {{ 1|string ~ 'x' }} {{ [1]|string }}", {}),
    ("f_numbers", "{{ '42'|int }} {{ 'x'|int(7) }} {{ '3.7'|int }} {{ 3.9|int }} {{ '0x1A'|int(0, 16) }} {{ '1_000'|int }} {{ '2.5'|float }} {{ 'bad'|float }} {{ -3|abs }} {{ -2.5|abs }} {{ 2.5|round }} {{ 3.5|round }} {{ 2.675|round(2) }} {{ 2.1|round(0, 'ceil') }} {{ 2.9|round(method='floor') }} {{ 5|round }}", {}),
    ("f_sort_unique_reverse", "{{ ['b', 'A', 'c']|sort }} {{ ['b', 'A', 'c']|sort(case_sensitive=true) }} {{ [3, 1, 2]|sort(reverse=true) }} {{ ms|sort(attribute='n')|map(attribute='n')|list }} {{ ['a', 'A', 'b', 'a']|unique|list }} {{ [1, 2, 3]|reverse|list }} {{ 'abc'|reverse }} {{ (1, 2)|reverse|list }}", {"ms": [{"n": 2}, {"n": 1}]}),
    ("f_sort_stable_reverse", "{{ {'b': 1, 'A': 2, 'a': 3}|dictsort(reverse=true) }} {{ ['b', 'A', 'a']|sort(reverse=true) }}", {}),
    ("f_misc", "{{ 'a <b> & \"c\"'|e }} {{ 'x'|safe }} {{ 'one two  three'|wordcount }} [{{ 'ab'|center(6) }}] {{ [1, 2, 3]|sum }} {{ [1, 5, 3]|max }} {{ ['b', 'a']|min }} {{ {'b': 1, 'a': 2}|dictsort }} {{ '%s-%s'|format('a', 'b') }} {{ 'x'|attr('upper') is callable }}", {}),
    ("f_indent", "[{{ 'a\\nb\\n\\nc'|indent }}][{{ 'a\\nb'|indent(2, first=true) }}][{{ 'a\\n\\nb'|indent('> ', blank=true) }}][{{ 'x\\n'|indent }}]", {}),
    # String methods.
    ("m_strip_split", "[{{ '  a  '.strip() }}][{{ 'xxaxx'.strip('x') }}][{{ '\\n\\na\\n'.lstrip('\\n') }}][{{ 'a\\n\\n'.rstrip() }}] {{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a b c'.rsplit(' ', 1) }} {{ 'a\\nb\\r\\nc'.splitlines() }}", {}),
    ("m_affixes", "{{ 'hello'.startswith('he') }} {{ 'hello'.endswith(('x', 'lo')) }} {{ 'hello'.startswith('l', 2) }} {{ '<tool_response>x</tool_response>'.startswith('<tool_response>') and '<tool_response>x</tool_response>'.endswith('</tool_response>') }}", {}),
    ("m_find_replace", "{{ 'héllo'.find('l') }} {{ 'hello'.rfind('l') }} {{ 'hello'.find('z') }} {{ 'a-b-c'.replace('-', '+') }} {{ 'a-b-c'.replace('-', '', 1) }} {{ 'banana'.count('an') }} {{ 'hello'.index('e') }}", {}),
    ("m_case", "{{ 'hello world'.title() }} {{ \"they're bill's\".title() }} {{ 'hELLO'.capitalize() }} {{ 'Hi'.swapcase() }} {{ 'straße'.upper() }} {{ 'ÉCOLE'.lower() }}", {}),
    ("m_join_format", "{{ ', '.join(['a', 'b']) }} {{ '{} and {}'.format('x', 'y') }} {{ '{1}{0}'.format('a', 'b') }} {{ '{name}!'.format(name='n') }} {{ '{{}}{}'.format(1) }} {{ '{!r}'.format('q') }}", {}),
    ("m_misc", "{{ '7'.zfill(3) }} {{ 'ab'.ljust(4, '.') }}| {{ 'ab'.rjust(4) }} {{ 'abc'.isalpha() }} {{ '12'.isdigit() }} {{ ' '.isspace() }} {{ 'prefix_x'.removeprefix('prefix_') }} {{ 'a=b=c'.partition('=') }} {{ 'a=b=c'.rpartition('=') }}", {}),
    ("m_list_dict", "{{ [1, 2, 1].count(1) }} {{ ['a', 'b'].index('b') }} {{ d.get('a') }} {{ d.get('z', 0) }} {{ d.copy() }}", {"d": {"a": 1}}),
    # Markup: safe / escape give markupsafe.Markup, whose + and % escape plain-string operands (~ does not).
    ("markup_plus_escapes", "{{ '<a>' + ('<b>'|safe) }} {{ ('<b>'|safe) + '<c>' }} {{ '<a>' ~ ('<b>'|safe) }} {{ ('<b>'|e) + ('<i>'|safe) }} {{ ('%s<br>'|safe) % '<x>' }} {{ ('x'|safe) * 2 }}", {}),
    ("markup_string_filter", "{{ ('<b>'|safe|string) + '&' }} {{ ('<b>'|safe|upper) + '&' }}", {}),
    # Globals.
    ("g_range_dict", "{{ range(3)|list }} {{ range(1, 10, 3)|list }} {{ range(5, 0, -2)|list }} {{ range(3) }} {{ range(0) | list }} {{ dict(a=1, b='x') }} {{ dict([('k', 1)]) }} {{ range(3)|length }}", {}),
    ("g_joiner_cycler", "{% set j = joiner(' | ') %}{% for x in 'ab' %}{{ j() }}{{ x }}{% endfor %} {% set c = cycler('odd', 'even') %}{{ c.next() }}{{ c.next() }}{{ c.next() }}{{ c.current }}", {}),
    ("g_strftime_now", "{{ strftime_now('%Y-%m-%d %H:%M:%S %a %b %d %B %A %j') }}", {}),
    ("g_context_shadow", "{{ range }}", {"range": "context wins"}),
    # Undefined behaviour.
    ("undef_prints_empty", "[{{ nope }}][{{ nope|trim }}][{{ nope|upper }}][{{ nope ~ 'x' }}][{{ nope|string }}][{{ nope|join }}][{{ nope|list }}]", {}),
    ("undef_tests_and_truth", "{{ nope is defined }} {{ 'yes' if nope else 'no' }} {{ nope == nope }} {{ nope != 1 }} {{ not nope }} {{ nope is none }}", {}),
    ("undef_iterate", "{% for x in nope %}x{% else %}empty{% endfor %}", {}),
    ("iterator_one_pass", "{% set g = [1, 2, 3]|select('odd') %}{{ g|list }}{{ g|list }}{% set h = [1, 2]|map('string') %}{{ 'yes' if h else 'no' }}", {}),
    ("iterator_first_consumes", "{% set g = [1, 2, 3]|select %}{{ g|first }}{{ g|list }}", {}),
    # Errors jinja2 raises.
    ("err_raise_exception", "{{ raise_exception('Bad conversation: ' ~ n) }}", {"n": 3}),
    ("err_undefined_attr", "{{ m.content.strip() }}", {"m": {}}),
    ("err_undefined_name_attr", "{{ nope.x }}", {}),
    ("err_undefined_add", "{{ nope + 'x' }}", {}),
    ("err_undefined_item_list", "{{ l[0]['role'] }}", {"l": []}),
    ("err_str_plus_none", "{{ 'a' + none }}", {}),
    ("err_str_plus_int", "{{ 'a' + 1 }}", {}),
    ("err_int_plus_str", "{{ 1 + 'a' }}", {}),
    ("err_compare_types", "{{ 'a' < 1 }}", {}),
    ("err_iterate_none", "{% for x in none %}{% endfor %}", {}),
    ("err_in_none", "{{ 'a' in none }}", {}),
    ("err_unsafe_append", "{% set l = [] %}{% set _ = l.append(1) %}", {}),
    ("err_unsafe_update", "{% set d = {} %}{{ d.update({'a': 1}) }}", {}),
    ("err_division_by_zero", "{{ 1 / 0 }}", {}),
    ("err_tojson_undefined", "{{ nope|tojson }}", {}),
    ("err_len_generator", "{{ [1]|select|length }}", {}),
    ("err_items_non_mapping", "{{ [1]|items|list }}", {}),
    ("err_unpack", "{% for a, b in [[1, 2, 3]] %}{% endfor %}", {}),
    ("err_ns_assign", "{% set x = 1 %}{% set x.a = 2 %}", {}),
    ("err_macro_too_many_args", "{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", {}),
    ("err_macro_unknown_kwarg", "{% macro m(a) %}{% endmacro %}{{ m(b=1) }}", {}),
    ("err_call_non_callable", "{{ 'a'() }}", {}),
    ("err_range_too_big", "{{ range(200000)|length }}", {}),
    ("err_split_empty_sep", "{{ 'a'.split('') }}", {}),
    ("err_join_non_str", "{{ ', '.join([1]) }}", {}),
    # jinja2 renders this (Python's ints are unbounded); palign refuses it (kUnsupported) rather than wrap around.
    ("unsupported_int_beyond_64_bits", "{{ 2 ** 62 + 2 ** 62 }}", {}),
]


class AssistantTracker(jinja2.ext.Extension):
    # transformers' extension, less the index tracking: {% generation %}...{% endgeneration %} renders its body.
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_generation_support"), [], [], body).set_lineno(lineno)

    @jinja2.pass_eval_context
    def _generation_support(self, context, caller):
        return caller()


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return FIXED_NOW.strftime(format)


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(template, spec, conversation, add_generation_prompt):
    kwargs = {k: spec[k] for k in ("bos_token", "eos_token") if spec[k] is not None}
    context = dict(conversation.get("context", {}))
    documents = context.pop("documents", None)
    kwargs.update(context)
    return template.render(messages=conversation["messages"], tools=conversation.get("tools"), documents=documents,
                           add_generation_prompt=add_generation_prompt, **kwargs)


def main():
    env = environment()
    templates, cases, errors = {}, [], []
    for name, spec in TEMPLATES.items():
        path = HERE / "templates" / (name + ".jinja")
        template = env.from_string(path.read_text(encoding="utf-8"))
        templates[name] = {"file": "templates/" + path.name, "source": spec["source"], "bos_token": spec["bos_token"],
                           "eos_token": spec["eos_token"]}
        if "note" in spec:
            templates[name]["note"] = spec["note"]
        for conv_name, conversation in CONVERSATIONS.items():
            if name not in conversation.get("templates", TEMPLATES):
                continue
            for add_generation_prompt in conversation.get("generation", [True]):
                row = {"template": name, "conversation": conv_name, "add_generation_prompt": add_generation_prompt}
                try:
                    row["expected"] = render(template, spec, conversation, add_generation_prompt)
                    cases.append(row)
                except Exception as e:  # noqa: BLE001 - every jinja2 failure is a fixture
                    row["error"] = type(e).__name__
                    row["message"] = str(e)
                    errors.append(row)
    conversations = {}
    for conv_name, conversation in CONVERSATIONS.items():
        conversations[conv_name] = {"messages": conversation["messages"]}
        context = dict(conversation.get("context", {}))
        if "tools" in conversation:
            context["tools"] = conversation["tools"]
        if context:
            conversations[conv_name]["context"] = context
    doc = {
        "format": "palign.chat_template_cases",
        "version": 2,
        "about": "What transformers' apply_chat_template renders (jinja2 configured as in "
                 "transformers/utils/chat_template_utils.py) for each template of 'templates' (bos/eos as the model's "
                 "tokenizer_config.json; null: not passed) and each conversation of 'conversations' ('context': "
                 "the extra template variables: tools, documents, template kwargs). 'cases' hold the exact output; "
                 "'errors' hold the exception jinja2 raised: 'TemplateError' is the template's raise_exception() and "
                 "its message must match; other types (UndefinedError, TypeError, SecurityError, ...) must fail too. "
                 "strftime_now() formats 'strftime_now'. Each template's 'source' names the repository, commit and "
                 "path it was copied from.",
        "generator": "tests/data/chat_templates/make_fixtures.py (python3 make_fixtures.py regenerates this file)",
        "library": LIBRARY,
        "strftime_now": FIXED_NOW.isoformat(),
        "templates": templates,
        "conversations": conversations,
        "cases": cases,
        "errors": errors,
    }
    out = HERE / "chat_templates.json"
    out.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{out}: {len(templates)} templates, {len(cases)} renderings, {len(errors)} errors")

    micro = []
    for name, source, context in J:
        row = {"name": name, "template": source, "context": context}
        try:
            row["expected"] = env.from_string(source).render(**context)
        except Exception as e:  # noqa: BLE001
            row["error"] = type(e).__name__
            row["message"] = str(e)
        micro.append(row)
    doc = {
        "format": "palign.jinja_cases",
        "version": 1,
        "about": "Small templates, one construct each, and what jinja2 renders for them (or raises: 'error' is the "
                 "exception type, 'message' its text), in the environment of chat_templates.json (transformers' "
                 "configuration; strftime_now() formats the same fixed instant). 'context' holds the variables.",
        "generator": "tests/data/chat_templates/make_fixtures.py (python3 make_fixtures.py regenerates this file)",
        "library": LIBRARY,
        "strftime_now": FIXED_NOW.isoformat(),
        "cases": micro,
    }
    out = HERE / "jinja_cases.json"
    out.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{out}: {len(micro)} cases, {sum('error' in m for m in micro)} errors")


if __name__ == "__main__":
    main()
