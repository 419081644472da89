"""The revocation matcher on labelled messages: every revocation caught, no look-alike opted out.

The table is the acceptance set of issue 12: revocations and look-alikes in
English and Spanish, with typos and texting shorthand, written the way
people text. A revocation missed breaks the FCC rule; a look-alike caught
silences someone who only wanted their appointment moved. Both fail here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.compliance.revocation import RevocationMatcher, normalize

MATCHER = RevocationMatcher.from_dir(Path(__file__).resolve().parents[3] / "intents" / "consent")

REVOCATIONS = [
    # English: the issue's own examples
    "opt me out", "I want to opt out", "no more texts", "Stop please", "STOP ALL", "stop it",
    "do not text this number", "I don't want these messages anymore", "leave me alone", "delete my number",
    "who is this? stop", "u can stop now", "dont text me anymore", "pls stop", "stop texting me", "unsubscribe me",
    "please stop texting me", "remove me from your list",
    # keyword words in short messages
    "STOP!!!", "stop.", "Stop pls", "stop plz", "stop now", "stop stop stop", "STOP NOW PLEASE", "ok stop",
    "just stop", "stop already", "stop it please", "can you stop", "could you stop please", "Stop, thanks",
    "stop thank you", "STOPALL", "unsubscribe", "Unsubscribe please", "unsub", "opt out", "optout",
    "opt-out please", "Quit", "revoke", "i said stop", "STOP. NOW.", "hey stop", "stop messages",
    "stop texts pls", "omg stop", "stop lol",
    # in other words
    "stop sending me messages", "quit texting me", "stop messaging me", "please stop contacting me",
    "stop spamming me", "stop bothering me", "no more messages please", "no more msgs", "no more sms thanks",
    "no texts anymore", "don't message me", "do not contact me again", "never text me again",
    "dont txt me", "please don't text this number", "i do not want your texts", "i dont want any more texts",
    "I no longer want reminders", "don't send me any more texts", "please take me off your list",
    "take me off", "remove me", "please remove my number", "delete my number from your system",
    "lose my number", "i want to unsubscribe", "unsubscribe this number", "revoke my consent",
    "I withdraw consent", "stop the texts", "stop these messages", "cancel all messages", "end all texts",
    "cancel my reminders", "enough with the texts", "wrong number", "Wrong number, stop",
    "stop sending me messages about appointments", "why do you keep texting me, stop",
    "who is this?? stop texting", "STOP. Who is this?", "I never signed up for this. Stop.",
    "leave me alone please", "u can stop txting me now", "quit messaging this number",
    # typos and shorthand
    "stpo", "sotp", "STOPP", "stopppp", "stop pleasee", "unsubcribe", "unsuscribe", "unsubscibe me",
    "pls stp", "stop txting me", "dont txt me no more", "no more txts", "stop msging me", "stop it plz",
    "opt me out plz", "remove me pls",
    # Spanish
    "baja", "BAJA", "Baja por favor", "no me envíen más mensajes", "no me envien mas mensajes",
    "ya no me manden mensajes", "ya no me manden", "no me escriban más", "dejen de escribirme",
    "dejen de enviarme mensajes", "paren de mandarme mensajes", "no quiero recibir más mensajes",
    "ya no quiero mensajes", "no más mensajes por favor", "quiero darme de baja", "darme de baja",
    "me doy de baja", "borren mi número", "quítenme de la lista", "sáquenme de su lista",
    "déjenme en paz", "no me molesten", "alto", "alto por favor", "basta", "ya basta", "parar",
    "cancelar suscripción", "desuscribirme", "número equivocado", "no me manden mas recordatorios",
    "ya no me escriban porfa", "vaja", "no me envíen mensajes, gracias", "quiero la baja",
]

LOOK_ALIKES = [
    # the issue's own
    "I can't stop the bleeding", "stop by tomorrow?", "Stop. I meant friday", "the bus stop",
    "stop my booking", "cancel my appointment",
    # stop as a verb about something else
    "Stop! I can't stop the bleeding", "my tooth won't stop hurting", "it wont stop bleeding after the extraction",
    "can i stop by later today", "i'll stop in on friday", "is there a bus stop near you",
    "whats the nearest bus stop", "stop booking", "stop the booking", "stop, don't book it",
    "stop, wait, i meant 3pm", "stop i mean thursday", "Stop. Wrong day, I meant Tuesday", "non stop pain",
    "my gums keep bleeding and it wont stop", "please stop the appointment i made", "stop my appointment",
    "can you stop my reminder for friday only", "i need to stop taking my meds before the surgery?",
    "full stop", "make it stop hurting", "when does the pain stop",
    # cancel / end / quit about appointments
    "cancel", "cancel please", "cancel it", "i need to cancel", "cancel my cleaning",
    "please cancel my booking", "I wanted to cancel my checkup", "cancel the 3pm", "end of the week works",
    "weekend?", "the end", "i quit smoking", "what time do you end on friday",
    # messages wanted, or questions about them
    "text me the address", "can you send me a text reminder", "did you get my text?",
    "I don't want to miss any messages", "i dont want to opt out", "please don't stop texting me",
    "if i opt out will i still get reminders?", "what happens if i unsubscribe later",
    "dont cancel my appointment", "don't book anything yet", "no more questions, thanks",
    "no more appointments this month", "i have no more questions", "stop sending me the wrong times",
    "send me messages on whatsapp instead", "can you message me tomorrow", "i didnt get any texts",
    "remember me?", "please remember my number", "can you save my number", "my number changed",
    "take me to the booking", "i want out of this appointment", "leave a message", "leave it",
    # plain messages
    "hi", "yes", "no", "ok", "thanks", "hello?", "book a cleaning tomorrow at 3pm", "what are your hours",
    "where are you", "how much is whitening", "can i talk to a person", "help",
    # Spanish look-alikes
    "no quiero darme de baja", "para cuándo hay cita", "para mañana", "quiero cancelar mi cita",
    "cancelar mi cita del viernes", "no puedo parar el sangrado", "me duele mucho, no para", "alto dolor de muelas",
    "baja el precio?", "hay una parada de autobús cerca?", "mándenme la dirección", "envíenme un mensaje mañana",
    "no me llegan los mensajes", "gracias", "hola", "sí", "no sé", "quiero una limpieza",
    "si me doy de baja sigo recibiendo recordatorios?", "tengo una pregunta", "no gracias",
]


def test_the_table_is_big_enough() -> None:
    assert len(REVOCATIONS) + len(LOOK_ALIKES) >= 150
    assert len(set(REVOCATIONS)) == len(REVOCATIONS) and len(set(LOOK_ALIKES)) == len(LOOK_ALIKES)
    assert not set(map(normalize, REVOCATIONS)) & set(map(normalize, LOOK_ALIKES))


def test_every_revocation_is_recognised() -> None:
    missed = [m for m in REVOCATIONS if MATCHER.match(m) is None]
    assert missed == [], f"{len(missed)} of {len(REVOCATIONS)} revocations missed"


def test_no_look_alike_is_an_opt_out() -> None:
    caught = {m: MATCHER.match(m) for m in LOOK_ALIKES}
    false = {m: r for m, r in caught.items() if r is not None}
    assert false == {}, f"{len(false)} of {len(LOOK_ALIKES)} look-alikes taken as opt-outs"


@pytest.mark.parametrize(
    ("body", "language", "rule", "words"),
    [
        ("pls stop", "en", "keyword", "stop"),
        ("STOP ALL", "en", "keyword", "stop all"),
        ("please stop sending me messages", "en", "phrase", "stop sending me"),
        ("I don't want these messages anymore", "en", "phrase", "dont want these messages"),
        ("ya no me manden mensajes", "es", "phrase", "no me manden"),
        ("baja", "es", "keyword", "baja"),
        ("stpo", "en", "keyword", "stop"),
    ],
)
def test_what_matched_is_reported(body: str, language: str, rule: str, words: str) -> None:
    found = MATCHER.match(body)
    assert found is not None
    assert (found.language, found.rule, found.words) == (language, rule, words)


def test_help_words_per_language() -> None:
    assert MATCHER.is_help("Ayuda") == "es"
    assert MATCHER.is_help("ayuda con mi cita") is None
