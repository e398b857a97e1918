"""The e-mail templates (Spanish, a text and an HTML part each), rendered with Jinja2.

Each template ``NAME`` is three files in ``templates/email/``: ``NAME.subject.txt``,
``NAME.txt`` and ``NAME.html``. HTML is autoescaped; text is not. Money is given in centavos and
shown in pesos (``| pesos``); times are epoch seconds shown in central Mexico's time (``| fecha``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import jinja2

from caja.domain.mail import RELAY_CHECK_TEMPLATE, OutgoingEmail, TemplatedEmail, spanish_datetime
from caja.domain.money import Centavos, format_mxn

TEMPLATE_DIR: Final = Path(__file__).parent / "templates" / "email"

# The payer's receipt for a recurrent cash payment.
PAYMENT_RECEIPT: Final = "pago_exitoso"
# The payout beneficiary's withdrawal reference.
WITHDRAWAL_REFERENCE: Final = "retiro_referencia"
# A generic message to check that e-mail gets through.
TEST_MESSAGE: Final = RELAY_CHECK_TEMPLATE
TEMPLATES: Final = (PAYMENT_RECEIPT, WITHDRAWAL_REFERENCE, TEST_MESSAGE)


def _pesos(amount: int) -> str:
    return format_mxn(Centavos(int(amount)))


def _fecha(epoch: int) -> str:
    return spanish_datetime(int(epoch))


class EmailTemplates:
    def __init__(self, directory: Path = TEMPLATE_DIR) -> None:
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(directory),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            # Templates ship with the package: no stat() of every file on every render (one per payment).
            auto_reload=False,
        )
        self._env.filters["pesos"] = _pesos
        self._env.filters["fecha"] = _fecha

    def render_email(self, email: TemplatedEmail) -> OutgoingEmail:
        """The message an ``email`` job sends (rendered by its handler, when it is sent)."""
        return self.render(email.template, email.to, email.context)

    def render(self, name: str, to: Sequence[str], context: Mapping[str, Any]) -> OutgoingEmail:
        if name not in TEMPLATES:
            raise ValueError(f"no e-mail template {name!r}")
        values = dict(context)
        subject = " ".join(self._env.get_template(f"{name}.subject.txt").render(values).split())
        values["subject"] = subject
        text = self._env.get_template(f"{name}.txt").render(values)
        html = self._env.get_template(f"{name}.html").render(values)
        return OutgoingEmail(to=tuple(to), subject=subject, text=text, html=html, template=name)


_DEFAULT: EmailTemplates | None = None


def templated(name: str, to: Sequence[str], context: dict[str, Any]) -> TemplatedEmail:
    """An e-mail to enqueue: checked now (the template exists, the addresses are valid), rendered
    when it is sent. Raises ``ValueError``."""
    if name not in TEMPLATES:
        raise ValueError(f"no e-mail template {name!r}")
    return TemplatedEmail(to=tuple(to), template=name, context=context)


def templates() -> EmailTemplates:
    """The package's templates, loaded once."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = EmailTemplates()
    return _DEFAULT
