"""An e-mail job as its sender follows it: where the message stands, and the message it became.

Pure rules, no I/O. ``POST /_caja/emails`` answers a job (the message is sent later, by the
dispatcher) and ``GET /_caja/email_jobs/{id}`` shows it again. The job's own states are named for
what they mean to a message: ``pending`` (waiting for its first or next attempt), ``sending``
(a dispatcher holds it), ``sent`` (the SMTP server accepted it), ``failed`` (given up, or
refused for good) and ``cancelled``. Times are epoch seconds, like every time Conekta shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from caja.domain.jobs import JobStatus

_MESSAGE_STATUS = {
    JobStatus.PENDING: "pending",
    JobStatus.RUNNING: "sending",
    JobStatus.SUCCEEDED: "sent",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "cancelled",
}


def message_status(status: JobStatus) -> str:
    return _MESSAGE_STATUS[status]


def seconds(ms: int | None) -> int | None:
    return None if ms is None else ms // 1000


@dataclass(frozen=True, slots=True)
class EmailJob:
    """One ``email`` job, as stored (times in epoch milliseconds)."""

    id: str
    livemode: bool
    to: tuple[str, ...]
    template: str | None
    status: JobStatus
    attempts: int
    run_at: int
    created_at: int
    last_error: str | None = None
    last_attempted_at: int | None = None
    finished_at: int | None = None
    # The latest message the built-in catcher received from this job, if it caught one.
    caught_email_id: str | None = None

    @property
    def next_attempt_at(self) -> int | None:
        """When a waiting job is tried again; ``None`` once it is held, sent or given up."""
        return seconds(self.run_at) if self.status is JobStatus.PENDING else None
