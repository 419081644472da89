"""Staff email: what the business's staff receive, rendered from ``prompts/email/``
and sent through SendGrid's official library from the worker (never on the
webhook path).

- :mod:`bot.mail.message`: the email itself and the sender protocol;
- :mod:`bot.mail.compose`: Jinja2 rendering (plain text and HTML) of a staff event;
- :mod:`bot.mail.sendgrid_api`: the SendGrid sender (retryable 429/5xx, final 4xx);
- :mod:`bot.mail.jobs`: the queue job that builds and sends one event's email, once.

Example::

    sender = SendGridSender(api_key, from_email="bot@clinic.example")
    await sender.send(EmailMessage(event_id="handoff:SM1", to=("staff@clinic.example",),
                                   subject="...", text="...", html="<p>...</p>"))
"""
