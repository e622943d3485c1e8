"""The net catches what it is there for: a change to BookingWorkflow without a patch fails the replay
of recorded histories, naming them; the same change behind `workflow.patched` replays them all."""

from __future__ import annotations

import json

from temporalio import workflow
from temporalio.client import WorkflowHistory

from kernel.booking.messages import BookingRequest, Screening
from kernel.lexicon.views import BookingView
from tests.replay.harness import WORKFLOWS, history_name, load, recorded, replay
from workflows.booking import BookingWorkflow


# sandboxed=False: the sandbox would re-import this test module, pytest and all.
@workflow.defn(name="BookingWorkflow", sandboxed=False)
class ScreensTwice(BookingWorkflow):
    """A plausible edit: screen the request again before opening the booking (one more activity)."""

    @workflow.run
    async def run(self, request: BookingRequest) -> BookingView:
        await self._db("screen_request", request, result_type=Screening)
        return await super().run(request)


@workflow.defn(name="BookingWorkflow", sandboxed=False)
class ScreensTwiceWhenPatched(BookingWorkflow):
    """The same edit as docs/versioning.md says to make it: only bookings started after the deploy."""

    @workflow.run
    async def run(self, request: BookingRequest) -> BookingView:
        if workflow.patched("screen-before-open"):
            await self._db("screen_request", request, result_type=Screening)
        return await super().run(request)


def _bookings() -> list[tuple[str, WorkflowHistory]]:
    paths = [p for p in recorded() if json.loads(p.read_text())["workflowType"] == "BookingWorkflow"]
    assert paths, "no recorded BookingWorkflow history"
    return [(history_name(p), load(p)) for p in paths]


def _with(booking: type) -> list[type]:
    return [booking if cls is BookingWorkflow else cls for cls in WORKFLOWS]


async def test_an_unpatched_change_fails_naming_every_booking_history_it_breaks() -> None:
    histories = _bookings()
    broken = await replay(histories, _with(ScreensTwice))
    # Every booking starts with open_booking: the changed first command breaks all of them.
    assert [b.name for b in broken] == [name for name, _ in histories]
    assert all("Nondeterminism" in b.error for b in broken), broken[0]
    held_confirmed = next(b for b in broken if b.name.endswith("/booking-held-confirmed"))
    assert str(held_confirmed).startswith(held_confirmed.name + " no longer replays: ")


async def test_the_same_change_behind_a_patch_replays_every_history() -> None:
    assert await replay(_bookings(), _with(ScreensTwiceWhenPatched)) == []
