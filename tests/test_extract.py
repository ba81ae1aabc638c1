"""Cleaning model replies into candidate modules."""

from __future__ import annotations

from qt45.extract import extract_modules, strip_thinking

MODULE = '(module (func (export "f") (result i32) i32.const 1))'


def test_fenced_module_with_prose() -> None:
    reply = f"Sure! Here it is:\n\n```wat\n{MODULE}\n```\n\nHope this helps."

    assert extract_modules(reply) == [MODULE]


def test_unfenced_module_with_prose() -> None:
    reply = f"The answer is\n{MODULE}\nwhich returns one."

    assert extract_modules(reply) == [MODULE]


def test_think_block_is_removed() -> None:
    decoy = '(module (func (export "decoy")))'
    reply = f"<think>maybe {decoy}</think>\n```wat\n{MODULE}\n```"

    assert extract_modules(reply) == [MODULE]


def test_unclosed_think_block_hides_the_rest() -> None:
    assert strip_thinking(f"<think>still thinking {MODULE}") == ""
    assert extract_modules(f"<think>still thinking {MODULE}") == []


def test_stray_closing_think_tag() -> None:
    assert extract_modules(f"reasoning...</think>\n{MODULE}") == [MODULE]


def test_several_candidates_in_order() -> None:
    second = '(module (func (export "f") (result i32) i32.const 2))'
    reply = f"```wat\n{MODULE}\n```\nor\n```wasm\n{second}\n```"

    assert extract_modules(reply) == [MODULE, second]


def test_parentheses_in_strings_and_comments() -> None:
    module = '(module ;; a comment with )\n (; block ) ;) (func (export "a)b") (result i32) i32.const 3))'

    assert extract_modules(f"text {module} more") == [module]


def test_unclosed_fence_runs_to_end() -> None:
    assert extract_modules(f"```wat\n{MODULE}\n") == [MODULE]


def test_no_module() -> None:
    assert extract_modules("I cannot help with that.") == []
    assert extract_modules("") == []


def test_truncated_module_is_not_a_candidate() -> None:
    assert extract_modules('```wat\n(module (func (export "f") (result i32)\n') == []
