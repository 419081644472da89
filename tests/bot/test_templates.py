"""The one Jinja2 environment: lookup, strictness, sandbox, start-up checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import TemplateError
from bot.messages import Channel
from bot.templates import ReplyTemplates

PROMPTS = Path(__file__).resolve().parents[2] / "prompts"
BUSINESS = {"name": "Bright Smile Dental"}


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def templates(tmp_path: Path) -> ReplyTemplates:
    return ReplyTemplates(
        write(
            tmp_path,
            {
                "replies/booked.j2": "Booked {{ service }}.\n",
                "replies/booked.whatsapp.j2": "*Booked* {{ service }}.\n",
                "replies/echo.j2": "You said: {{ text }}",
                "replies/listing.j2": (
                    "Services:\n{% for s in services %}\n- {{ s.name }}\n{% endfor %}\n\n"
                ),
                "replies/broken_attr.j2": "{{ business.phone }}",
                "replies/unsafe.j2": "{{ text.__class__.__mro__ }}",
                "replies/mutates.j2": "{% set _ = items.append(1) %}{{ items }}",
                "model/fallback.j2": "Answer only from: {{ facts }}",
                "replies/notes.txt": "not a template {{",
            },
        )
    )


def test_channel_variant_wins(templates: ReplyTemplates) -> None:
    assert templates.render("booked", "whatsapp", service="a cleaning") == "*Booked* a cleaning."


def test_falls_back_to_base_template(templates: ReplyTemplates) -> None:
    assert templates.render("booked", "sms", service="a cleaning") == "Booked a cleaning."


def test_accepts_channel_enum(templates: ReplyTemplates) -> None:
    assert templates.render("booked", Channel.WHATSAPP, service="x").startswith("*Booked*")
    assert templates.has("booked", Channel.SMS)


def test_has(templates: ReplyTemplates) -> None:
    assert templates.has("booked", "sms")
    assert templates.has("booked", "whatsapp")
    assert not templates.has("nope", "sms")
    assert not templates.has("fallback", "sms")  # model prompts are not replies


def test_result_is_stripped_and_blocks_trimmed(templates: ReplyTemplates) -> None:
    services = [{"name": "cleaning"}, {"name": "checkup"}]
    assert templates.render("listing", "sms", services=services) == (
        "Services:\n- cleaning\n- checkup"
    )


def test_undefined_variable_is_named(templates: ReplyTemplates) -> None:
    with pytest.raises(TemplateError, match=r"replies/booked\.j2.*'service' is undefined"):
        templates.render("booked", "sms")


def test_undefined_attribute_is_named(templates: ReplyTemplates) -> None:
    with pytest.raises(TemplateError, match=r"broken_attr\.j2.*no attribute 'phone'"):
        templates.render("broken_attr", "sms", business=BUSINESS)


def test_missing_template(templates: ReplyTemplates) -> None:
    with pytest.raises(TemplateError, match=r"'nope'.*replies/nope\.sms\.j2.*replies/nope\.j2"):
        templates.render("nope", "sms")


def test_user_text_is_never_evaluated(templates: ReplyTemplates) -> None:
    text = "{{ 7*7 }} {% for x in range(3) %}x{% endfor %} {{ business.name }}"
    assert templates.render("echo", "sms", text=text) == f"You said: {text}"


def test_sandbox_refuses_unsafe_access(templates: ReplyTemplates) -> None:
    with pytest.raises(TemplateError, match="unsafe"):
        templates.render("unsafe", "sms", text="hi")


def test_sandbox_is_immutable(templates: ReplyTemplates) -> None:
    items: list[int] = []
    with pytest.raises(TemplateError, match="unsafe"):
        templates.render("mutates", "sms", items=items)
    assert items == []


def test_render_prompt(templates: ReplyTemplates) -> None:
    assert templates.render_prompt("fallback", facts="hours") == "Answer only from: hours"
    with pytest.raises(TemplateError, match=r"model/nope\.j2"):
        templates.render_prompt("nope")


def test_templates_are_compiled_at_construction(tmp_path: Path) -> None:
    write(tmp_path, {"replies/hi.j2": "Hi {{ name }}"})
    templates = ReplyTemplates(tmp_path)
    (tmp_path / "replies" / "hi.j2").write_text("Changed", encoding="utf-8")
    (tmp_path / "replies" / "new.j2").write_text("New", encoding="utf-8")
    assert templates.render("hi", "sms", name="Ana") == "Hi Ana"  # the disk is not read again
    assert not templates.has("new", "sms")
    assert templates.names == frozenset({"replies/hi.j2"})


def test_syntax_error_fails_at_start_up(tmp_path: Path) -> None:
    write(tmp_path, {"replies/ok.j2": "fine", "replies/bad.j2": "line one\n{% if x %}oops"})
    with pytest.raises(TemplateError, match=r"replies/bad\.j2, line 2"):
        ReplyTemplates(tmp_path)


def test_required_template_missing_fails_at_start_up(tmp_path: Path) -> None:
    write(tmp_path, {"replies/greeting.j2": "Hi"})
    with pytest.raises(TemplateError, match=r"missing reply templates .*: error$"):
        ReplyTemplates(tmp_path, required=["greeting", "error"])


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="does not exist"):
        ReplyTemplates(tmp_path / "nowhere")


# The real templates shipped in prompts/.


@pytest.fixture(scope="module")
def shipped() -> ReplyTemplates:
    return ReplyTemplates(PROMPTS, required=["greeting", "error"])


@pytest.mark.parametrize("channel", list(Channel))
def test_greeting(shipped: ReplyTemplates, channel: Channel) -> None:
    anonymous = shipped.render("greeting", channel, name=None, business=BUSINESS)
    assert anonymous.startswith("Hi! This is Bright Smile Dental.")
    named = shipped.render("greeting", channel, name="Ana", business=BUSINESS)
    assert named.startswith("Hi Ana! This is Bright Smile Dental.")


def test_greeting_fits_one_sms_segment(shipped: ReplyTemplates) -> None:
    from bot.sms import count_segments

    text = shipped.render("greeting", "sms", name="Alexandra", business=BUSINESS)
    assert count_segments(text).encoding == "GSM-7"
    assert count_segments(text).segments == 1


def test_error(shipped: ReplyTemplates) -> None:
    assert shipped.render("error", "sms") == (
        "Sorry, something went wrong on our side. Please try again in a moment."
    )
