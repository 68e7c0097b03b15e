"""The console's pages for reading what was shared (issue 19 items 2-3, issues 16 and 21):
the browsable audit log (filter, pages, CSV, print) with each entry's proof, the monthly
"what left the community" summary per consumer, the de-identification report of every
release, and the district's receipts. All read-only: any signed-in person may see them."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.admin import audit_log, audit_words, monthly, releases
from api.admin.routes import _day
from api.admin.web import console_of, labels_of, page, principal

router = APIRouter()
KindQuery = Annotated[list[str] | None, Query(alias="kind", max_length=20)]
DayQuery = Annotated[str | None, Query(max_length=10)]


def _filter(
    consumer: Annotated[str | None, Query(max_length=100)] = None,
    feed: Annotated[str | None, Query(max_length=100)] = None,
    kind: KindQuery = None,
    day_from: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    day_to: Annotated[str | None, Query(alias="to", max_length=10)] = None,
    page_no: Annotated[int, Query(alias="page", ge=0, le=100_000)] = 0,
) -> audit_log.LogFilter:
    """The log's filter from the query (one dependency for the page and its CSV)."""
    chosen = tuple(k for k in (kind or []) if k in audit_log.KINDS)
    return audit_log.LogFilter(consumer or None, feed or None, chosen, _day(day_from), _day(day_to), page_no)


LogQuery = Annotated[audit_log.LogFilter, Depends(_filter)]


@router.get("/audit/log", response_class=HTMLResponse)
def log_page(request: Request, wanted: LogQuery, printable: Annotated[bool, Query(alias="print")] = False) -> Response:
    who = principal(request)
    settings = console_of(request).settings
    entries, more = audit_log.list_entries(settings, wanted)
    consumers, feeds = audit_log.choices(settings)
    return page(
        request,
        "audit_log.html",
        who,
        entries=entries,
        more=more,
        wanted=wanted,
        kinds=audit_log.KINDS,
        consumers=consumers,
        feeds=feeds,
        printable=printable,
        zone=settings.timezone,
        summary=audit_words.summary,
        outcome=audit_words.outcome,
    )


@router.get("/audit/log.csv")
def log_csv(request: Request, wanted: LogQuery) -> Response:
    principal(request)
    settings = console_of(request).settings
    wanted = replace(wanted, page=0)  # the CSV is the whole filtered view, not one page of it
    body = audit_log.log_csv(settings, wanted, labels_of(request))
    name = f"neuron-audit-{settings.community_id}.csv"
    headers = {"content-disposition": f'attachment; filename="{name}"'}
    return Response(body, media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/audit/log/{seq}", response_class=HTMLResponse)
def entry_page(request: Request, seq: int) -> Response:
    who = principal(request)
    found = audit_log.proof(console_of(request).settings, seq)
    if found is None:
        return page(request, "missing.html", who, status=404)
    told = audit_words.facts(labels_of(request), found.entry, found.fields)
    raw = audit_words.hashed_json(found.hashed)
    return page(request, "audit_entry.html", who, proof=found, facts=told, raw=raw)


@router.get("/audit/monthly", response_class=HTMLResponse)
def monthly_page(
    request: Request,
    consumer: Annotated[str | None, Query(max_length=100)] = None,
    month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None,
) -> Response:
    who = principal(request)
    console = console_of(request)
    settings = console.settings
    names = monthly.consumers(settings)
    if month is None:
        month = console.now().astimezone(ZoneInfo(settings.timezone)).strftime("%Y-%m")
    try:
        monthly.month_bounds(month, settings.timezone)
    except ValueError:
        raise HTTPException(422, "months are YYYY-MM") from None
    chosen = [consumer] if consumer else names
    summaries = [monthly.consumer_month(settings, name, month) for name in chosen]
    return page(request, "monthly.html", who, summaries=summaries, consumers=names, consumer=consumer, month=month)


@router.get("/audit/deid", response_class=HTMLResponse)
def deid_page(
    request: Request,
    feed: Annotated[str | None, Query(max_length=100)] = None,
    consumer: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    who = principal(request)
    settings = console_of(request).settings
    found = releases.releases(settings, feed or None, consumer or None)
    consumers, feeds = audit_log.choices(settings)
    return page(
        request,
        "deid.html",
        who,
        releases=found,
        feed=feed,
        consumer=consumer,
        feeds=sorted({r.feed for r in found} | set(feeds)),
        consumers=sorted({r.consumer for r in found} | set(consumers)),
    )


@router.get("/audit/receipts", response_class=HTMLResponse)
def receipts_page(request: Request) -> Response:
    who = principal(request)
    return page(request, "receipts.html", who, receipts=releases.kept_receipts(console_of(request).settings))
