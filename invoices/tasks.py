"""Celery tasks of invoices: thin wrappers that take ids and call a service."""

from __future__ import annotations

from celery import shared_task

from invoices import rendering


@shared_task
def invoice_render_task(invoice_id: int) -> None:
    rendering.invoice_render(invoice_id=invoice_id)
