"""E-mail channel: hands the page to an SMTP relay (``smtplib``), plain text.

The target of a route is the recipient's address. SMTP 4xx replies, connection errors and
timeouts are ``Retryable``; 5xx replies (a refused recipient, say) are ``Permanent``. The mail
carries no patient name: the summary, the severity, the rule and the alert id (the dashboard
has the rest, behind its login).
"""

from __future__ import annotations

import json
import smtplib
from email.message import EmailMessage

from homecare.alerts.config import SmtpConfig
from homecare.alerts.dispatch import OutgoingNotification
from homecare.alerts.errors import Permanent, Retryable

__all__ = ["EmailChannel", "render"]


def render(sender: str, to: str, body: str) -> EmailMessage:
    """render turns a change (the outbox JSON) into the e-mail sent for it."""
    change = json.loads(body)
    alert = change["alert"]
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = (
        f"[{alert['severity'].upper()}] alert {alert['id']} {change['change']}: {alert['rule_id']}"
    )
    message.set_content(
        f"{alert['summary']}\n\n"
        f"Alert {alert['id']} ({alert['severity']}, {alert['status']}, condition"
        f" {alert['condition']}), opened {alert['opened_at']}, evidence at"
        f" {alert['evidence_time']}.\nFor: {change.get('recipient') or 'care team'}.\n"
    )
    return message


class EmailChannel:
    """EmailChannel sends through one SMTP relay."""

    def __init__(self, smtp: SmtpConfig) -> None:
        self.smtp = smtp

    def send(self, delivery: OutgoingNotification) -> None:
        message = render(self.smtp.sender, delivery.target, delivery.body)
        try:
            with smtplib.SMTP(self.smtp.host, self.smtp.port, timeout=self.smtp.timeout_s) as s:
                if self.smtp.starttls:
                    s.starttls()
                if self.smtp.username:
                    s.login(self.smtp.username, self.smtp.password or "")
                s.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if all(400 <= code < 500 for code in codes):
                raise Retryable(f"recipient deferred: {codes}") from None
            raise Permanent(f"recipient refused: {codes}") from None
        except smtplib.SMTPResponseException as exc:
            if 400 <= exc.smtp_code < 500:
                raise Retryable(f"SMTP {exc.smtp_code}") from None
            raise Permanent(f"SMTP {exc.smtp_code}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise Retryable(f"{type(exc).__name__}: {exc}") from None
