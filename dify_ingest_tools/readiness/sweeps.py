"""Dataset sweeps: one document-list page shows the status of 100 documents.

Many batches in one dataset (an ingestion run) are watched by a *sweep*: one
``GET /datasets/{id}/documents`` page shows the status of 100 documents, so the sweep spots
the documents that finished and wakes just their poll loops, which confirm with one
``indexing-status`` request each. Meanwhile each loop polls on its own only at its longest
interval, as a safety net. The list is a hint, never the verdict: readiness is always
decided on ``indexing-status``.

A sweep has to earn its requests. It reads one page per 8 batches it covers (or down to
where it last saw their documents), sends at most two list requests per safety-net poll
of those batches (and, under a request budget, at most a quarter of it), wakes a loop once
per state the list shows, and ends with the last wait on its dataset. It gives up, and
every loop goes back to its own cadence, when the list endpoint fails, when two rounds in a
row find none of its batches' documents (the list does not show them: a large dataset, or
a server that filters them), or when the list keeps announcing changes that
``indexing-status`` does not confirm.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from dify_ingest_tools._base.clock import Clock
from dify_ingest_tools._http.retry import is_transient
from dify_ingest_tools.errors import DifyError
from dify_ingest_tools.models.documents import DifyDocument, DocumentList
from dify_ingest_tools.models.status import BatchIndexingStatus, IndexingStatus
from dify_ingest_tools.readiness.contact import Reach
from dify_ingest_tools.readiness.pollers import Poller, PollKey
from dify_ingest_tools.readiness.updates import PollUpdate, StatusSource

logger = logging.getLogger("dify_ingest_tools")

# Sweep a dataset when at least this many of its batches are being waited on: below it,
# per-batch polling costs about the same and shows segment progress more often.
SWEEP_MIN_BATCHES = 8
# Dify serves at most 100 documents per page; newest first. Pages beyond this are not read
# (batches that old are left to their own safety-net polls).
SWEEP_PAGE_SIZE = 100
SWEEP_MAX_PAGES = 128
# Pages of one round read at once.
SWEEP_CONCURRENCY = 4
# Give up on a dataset after this many rounds in a row that found none of the documents.
SWEEP_BLIND_ROUNDS = 2
# ... or after this many rounds in a row whose list request failed (5xx, garbled answers).
SWEEP_FAILED_ROUNDS = 3
# ... or once the list's announcements proved wrong this many times more than right.
SWEEP_MISLEADING_WAKES = SWEEP_MIN_BATCHES
# A sweep sends at most this many list requests per safety-net poll of the batches it
# covers (each loop polls on its own at its longest interval meanwhile) ...
SWEEP_POLL_SHARE = 2.0
# ... and at most this share of a client's request budget.
SWEEP_BUDGET_SHARE = 0.25
# Within those, a round comes every this share of the fastest poll interval.
SWEEP_ROUND_SHARE = 0.8


@dataclass(eq=False)
class Sweep:
    """One dataset's sweep: its task and how useful it has been."""

    dataset_id: str
    task: asyncio.Task[None] | None = None
    blind_rounds: int = 0
    depth: int = 0  # the deepest page that showed one of its documents last round
    true_wakes: int = 0
    false_wakes: int = 0
    failed_rounds: int = 0  # rounds in a row whose list request failed

    def confirmed(self, changed: bool) -> None:
        """Record whether the poll a wake caused saw the change the list announced."""
        if changed:
            self.true_wakes += 1
        else:
            self.false_wakes += 1

    @property
    def misleading(self) -> bool:
        return self.false_wakes - self.true_wakes >= SWEEP_MISLEADING_WAKES


class DatasetSweeps:
    """A monitor's sweeps, one per dataset with enough batches waited on.

    Shares the monitor's poll loops (``pollers``, ``polled``: how many of a dataset's
    batches have a loop) and its evidence of Dify answering (``reach``).
    """

    def __init__(
        self,
        source: StatusSource,
        pollers: dict[PollKey, Poller],
        polled: dict[str, int],
        reach: Reach,
        clock: Clock,
        requests_per_minute: float | None,
    ) -> None:
        self._source = source
        self._pollers = pollers
        self._polled = polled
        self._reach = reach
        self._clock = clock
        self._requests_per_minute = requests_per_minute
        #: dataset key -> its running sweep
        self.tasks: dict[str, asyncio.Task[None]] = {}
        # dataset -> why it is not swept; "unhelpful" ones are tried again on the next run
        self.no_sweep: dict[str, str] = {}
        # Datasets whose document list a sweep has read while their waits go on: Dify is
        # there, with this key (a wait's contact, before its batch's own first answer).
        self.answered: set[str] = set()

    async def stop(self, dataset_key: str) -> None:
        """The last wait on the dataset ended: so does its sweep, its request in flight too."""
        if self.no_sweep.get(dataset_key) == "unhelpful":
            del self.no_sweep[dataset_key]
        sweeper = self.tasks.get(dataset_key)
        if sweeper is not None and not sweeper.done():
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper

    async def aclose(self) -> None:
        sweepers = list(self.tasks.values())
        for sweeper in sweepers:
            sweeper.cancel()
        await asyncio.gather(*sweepers, return_exceptions=True)

    def covered(self, dataset_key: str) -> list[Poller]:
        """The loops a sweep of this dataset covers: batch loops (not a watch's own
        request), unfinished, still wanted, and either observed or with their documents
        known."""
        return [
            poller
            for poller in self._pollers.values()
            if poller.key[0] == dataset_key
            and poller.subscribers
            and poller.fetch is None
            and (poller.known if poller.last is None else not poller.last.is_terminal)
        ]

    def sweeping(self, dataset_id: str) -> bool:
        """Whether a sweep covers this dataset (starting one when enough batches wait)."""
        dataset_key = dataset_id.lower()
        if dataset_key in self.no_sweep:
            return False
        task = self.tasks.get(dataset_key)
        if task is not None and not task.done():
            return True
        if self._polled.get(dataset_key, 0) < SWEEP_MIN_BATCHES:
            return False
        if len(self.covered(dataset_key)) < SWEEP_MIN_BATCHES:
            return False
        sweep = Sweep(dataset_id=dataset_id)
        self.tasks[dataset_key] = asyncio.ensure_future(self._sweep(sweep))
        return True

    async def _sweep(self, sweep: Sweep) -> None:
        dataset_id = sweep.dataset_id
        dataset_key = dataset_id.lower()
        clock = self._clock
        try:
            while True:
                pollers = self.covered(dataset_key)
                if len(pollers) < SWEEP_MIN_BATCHES:
                    return
                started = clock.monotonic()
                pages = 1
                try:
                    found, pages = await self._once(sweep, pollers)
                except DifyError as error:
                    if not is_transient(error):
                        raise
                    # A blip: the loops' own safety-net polls cover this round.
                    logger.debug("dataset sweep of %s failed once: %s", dataset_id, error)
                    sweep.failed_rounds += 1
                    if dataset_key not in self.answered:
                        # Dify may not be there at all: the loops that have not looked yet
                        # look now, so a misconfiguration fails as fast as without a sweep.
                        for poller in pollers:
                            if poller.last is None:
                                poller.wake.set()
                else:
                    sweep.failed_rounds = 0
                    sweep.blind_rounds = 0 if found else sweep.blind_rounds + 1
                why = self._unhelpful(sweep)
                if why is not None:
                    logger.info(
                        "dataset sweep of %s stopped: %s; polling each batch on its own",
                        dataset_id,
                        why,
                    )
                    self.no_sweep[dataset_key] = "unhelpful"
                    return
                # A fixed period (not a gap after the sweep) keeps detection lag bounded; but
                # a round that took longer than that (a busy server, thousands of pages) is
                # followed by a gap as long, so lists never take more than half its time.
                period = self._period(pollers, pages)
                took = clock.monotonic() - started
                await clock.sleep(max(started + period - clock.monotonic(), took))
        except asyncio.CancelledError:
            raise
        except Exception as error:  # DifyError, or a list answer we cannot use
            logger.info(
                "dataset sweep of %s stopped (%s); polling each batch on its own", dataset_id, error
            )
            self.no_sweep[dataset_key] = "failed"
        finally:
            if self.tasks.get(dataset_key) is asyncio.current_task():
                del self.tasks[dataset_key]
            for poller in self.covered(dataset_key):
                poller.wake.set()  # back to their own cadence

    @staticmethod
    def _unhelpful(sweep: Sweep) -> str | None:
        if sweep.failed_rounds >= SWEEP_FAILED_ROUNDS:
            return f"its list request failed {sweep.failed_rounds} rounds in a row"
        if sweep.blind_rounds >= SWEEP_BLIND_ROUNDS:
            return (
                f"{sweep.blind_rounds} rounds found none of its batches' documents in the "
                "document list"
            )
        if sweep.misleading:
            return (
                f"the document list announced {sweep.false_wakes} changes that indexing-status "
                f"did not show (and {sweep.true_wakes} that it did)"
            )
        return None

    def _period(self, pollers: list[Poller], pages: int) -> float:
        """Seconds between sweep rounds: a share of the fastest cadence, unless that costs
        too much.

        A round every `SWEEP_ROUND_SHARE` of the fastest poll interval: what the list shows
        finished is confirmed within about one interval of finishing, list request and
        confirmation included, as a loop polling on its own at that interval would see it.
        The sweep may send `SWEEP_POLL_SHARE` list requests per safety-net poll of its
        batches (each at its longest interval), and under a budget at most
        `SWEEP_BUDGET_SHARE` of it.
        """
        cadences = [poller.cadence() for poller in pollers]
        fastest = min(cadence.initial for cadence in cadences)
        # requests per second
        rate = SWEEP_POLL_SHARE * sum(1.0 / cadence.maximum for cadence in cadences)
        if self._requests_per_minute is not None:
            rate = min(rate, SWEEP_BUDGET_SHARE * self._requests_per_minute / 60.0)
        return max(SWEEP_ROUND_SHARE * fastest, pages / rate)

    async def _once(self, sweep: Sweep, pollers: list[Poller]) -> tuple[int, int]:
        """One round: read the pages, wake the loops whose documents look finished.

        Returns how many of the covered documents the pages showed, and how many pages
        were read.
        """
        dataset_id = sweep.dataset_id
        wanted = {document: poller for poller in pollers for document in poller.documents()}
        deadline = max(poller.deadline() for poller in pollers)
        # Read one page per SWEEP_MIN_BATCHES batches covered, or one page past where its
        # documents were last seen (they are still there: the list is newest first).
        max_pages = min(SWEEP_MAX_PAGES, max(1, len(pollers) // SWEEP_MIN_BATCHES, sweep.depth + 1))
        found = 0
        depth = 0

        # Its own cap, apart from the polls': a round's pages never queue behind the polls
        # its own wakes cause (thousands when thousands of batches finish together).
        reading = asyncio.Semaphore(SWEEP_CONCURRENCY)

        def looked() -> None:
            # The list looks for every covered batch: their waits' contact clocks start
            # (a loop that leaves its first look to the sweep sends nothing of its own).
            now = self._clock.monotonic()
            for poller in pollers:
                poller.attempts.looked(now)

        async def page(number: int) -> tuple[int, DocumentList]:
            async with reading:
                return number, await self._source.list_page(
                    dataset_id,
                    page=number,
                    limit=SWEEP_PAGE_SIZE,
                    deadline=deadline,
                    on_send=looked if number == 1 else None,
                )

        def look(number: int, listing: DocumentList) -> None:
            nonlocal found, depth
            for item in listing.data:
                poller = wanted.pop(item.id, None)
                if poller is None:
                    continue
                found += 1
                depth = max(depth, number)
                shown = _shown(item)
                if _looks_finished(item.id, shown, poller.last) and (
                    poller.hints.get(item.id) != shown  # once per state the list shows
                ):
                    poller.hints[item.id] = shown
                    poller.woken_by = sweep
                    poller.wake.set()

        _, first = await page(1)
        self._reach.answered()
        dataset_key = dataset_id.lower()
        if dataset_key not in self.answered:
            # Dify answered for the dataset (base URL and key are right): the waits that have
            # not looked themselves hear so (their contact budget is spent); later ones hear
            # it as they subscribe.
            self.answered.add(dataset_key)
            for poller in self.covered(dataset_key):
                if poller.last is None:
                    poller.publish(PollUpdate(listed=True))
        look(1, first)
        pages = 1
        if wanted and first.has_more and first.data:
            # Page 1 says how many there are: read the rest at once (newest first, so the
            # documents being waited on are usually on the first pages), each looked at as
            # it arrives and then dropped.
            pages = max(1, min(max_pages, -(-first.total // SWEEP_PAGE_SIZE)))
            reads = [asyncio.ensure_future(page(number)) for number in range(2, pages + 1)]
            try:
                for arrival in asyncio.as_completed(reads):
                    look(*await arrival)
            finally:
                for read in reads:
                    read.cancel()
                await asyncio.gather(*reads, return_exceptions=True)
        sweep.depth = depth
        return found, pages


def _shown(item: DifyDocument) -> IndexingStatus | str | None:
    """The state a list item shows (Dify's list marks pauses in ``display_status`` only)."""
    return IndexingStatus.paused if item.display_status == "paused" else item.indexing_status


_NEWS = (IndexingStatus.completed, IndexingStatus.error, IndexingStatus.paused)


def _looks_finished(
    document_id: str, shown: IndexingStatus | str | None, last: BatchIndexingStatus | None
) -> bool:
    """The list shows a state worth confirming: finished, failed or paused, and new to us."""
    if shown not in _NEWS:
        return False
    if last is None:  # never asked yet: any of those is news
        return True
    try:
        known = last.document(document_id).indexing_status
    except KeyError:
        return False
    return known != shown


def agrees(status: BatchIndexingStatus, hints: dict[str, IndexingStatus | str | None]) -> bool:
    """Whether an answer shows a document in the state the list announced for it."""
    return any(doc.id in hints and doc.indexing_status == hints[doc.id] for doc in status.documents)
