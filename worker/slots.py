"""A worker's capacity, one count shared by the streams of all its schedulers.

A scheduler hands a worker runs while it holds the worker's credit; the
worker gives a slot back when a run ends. Each stream's credit is drawn
from this one ledger, so what the schedulers may hand over (credit they
hold) and what is here (runs live) together never pass the capacity,
however many schedulers the worker serves. Each live stream's fair share is
the capacity over the live streams; a freed slot goes to the stream using
least among those out of credit (past its share if need be: a stream
holding credit unspent needs no more). A stream that opens takes its share
from the free slots, and once it is up, from streams holding unused credit
beyond theirs (a negative credit).
A stream that breaks and comes back starts from what is free, not from the
whole capacity again: the runs it handed over before are still here.

Shares are not walls: each tick (LEND_EVERY), credit a stream left unspent
for the whole tick is lent to the streams that ran out of it (a scheduler
whose shards are quiet would otherwise keep it while another's queue
waits, and with fewer slots than schedulers one would never get any). The
idle stream keeps one slot for its next run, unless a stream that ran out
has nothing here at all. A lender that gets busy again is first in line
for freed slots, being the least used.

The one way past the capacity: runs already on their way from a scheduler
when its credit is taken back (a negative credit crosses them on the wire).
They are few (one stream's dispatch in flight, at a stream's start, or a
scheduler idle for a whole tick sending just then) and are run, not refused.
"""

from __future__ import annotations

Changes = dict[str, int]  # stream (scheduler address) -> credit to send it (negative: taken back)
LEND_EVERY = 0.5  # seconds; a scheduler with runs to hand over spends credit within its claim interval


class Slots:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._credit: dict[str, int] = {}  # open stream -> credit its scheduler holds unused
        self._runs: dict[str, int] = {}  # stream -> its runs here
        self._run_count = 0  # all runs here (asked per run: not summed each time)
        self._spent: set[str] = set()  # streams that spent credit this tick

    def free(self) -> int:
        held = self._run_count
        for credit in self._credit.values():
            if credit > 0:
                held += credit
        return self.capacity - held

    def in_use(self, address: str) -> int:
        """Credit the stream's scheduler holds plus the runs it handed over that are here."""
        return self._credit.get(address, 0) + self._runs.get(address, 0)

    def share(self) -> int:
        return -(-self.capacity // max(1, len(self._credit)))

    def open(self, address: str) -> int:
        """A stream opens: the credit its hello grants, from free slots only
        (a scheduler that cannot be reached takes nothing from the others)."""
        self._credit[address] = 0
        granted = max(0, min(self.free(), self.share() - self._runs.get(address, 0)))
        self._credit[address] = granted
        return granted

    def joined(self, address: str) -> Changes:
        """The stream is up: credit beyond their share that others hold
        unused is taken back, up to what this one lacks of its own."""
        changes: Changes = {}
        share, lacking = self.share(), self.share() - self.in_use(address)
        for other in sorted(self._credit, key=self.in_use, reverse=True):
            if lacking <= self.free():
                break
            back = min(self._credit[other], self.in_use(other) - share, lacking - self.free())
            if back > 0 and other != address:
                self._credit[other] -= back
                changes[other] = -back
        return self._hand_out(changes)

    def close(self, address: str) -> Changes:
        """The stream broke or its scheduler left: its unused credit is
        gone with it (its runs here still hold their slots)."""
        self._credit.pop(address, None)
        return self._hand_out({})

    def taken(self, address: str) -> None:
        """A run handed over on the stream arrived: one of its credits spent."""
        self._runs[address] = self._runs.get(address, 0) + 1
        self._run_count += 1
        self._spent.add(address)
        if address in self._credit:
            self._credit[address] -= 1

    def ended(self, address: str) -> Changes:
        """A run handed over on the stream ended (or was not kept): its slot
        goes to the stream using least."""
        runs = self._runs.get(address, 0)
        if runs > 1:
            self._runs[address] = runs - 1
        elif runs == 1:
            del self._runs[address]
        if runs:
            self._run_count -= 1
        return self._hand_out({})

    def lend_idle(self) -> Changes:
        """Once a tick: credit left unspent all tick goes to the streams that
        ran out of it (see above), in even parts, the least used first."""
        spent, self._spent = self._spent, set()
        wanting = [a for a, credit in self._credit.items() if credit <= 0]
        idle = [a for a, credit in self._credit.items() if credit > 0 and a not in spent]
        if not wanting or not idle:
            return {}
        keep = 0 if any(self.in_use(a) <= 0 for a in wanting) else 1
        changes: Changes = {}
        for lender in idle:
            lent = self._credit[lender] - keep
            if lent <= 0:
                continue
            self._credit[lender] -= lent
            changes[lender] = -lent
            for i, borrower in enumerate(sorted(wanting, key=self.in_use)):
                part = lent // len(wanting) + (1 if i < lent % len(wanting) else 0)
                self._credit[borrower] += part
                changes[borrower] = changes.get(borrower, 0) + part
        return changes

    def _hand_out(self, changes: Changes) -> Changes:
        """Free slots to the streams out of credit (their schedulers spend
        what they get), the least used first, up to their share, or past it
        when every stream out of credit has its share: a stream holding
        credit unspent needs no more. With none out of credit, to the least
        used below its share. (Once per run that ends: a few dict reads.)"""
        free = self.free()
        if free <= 0 or not self._credit:
            return changes
        share = self.share()
        while free > 0:
            wanting = [a for a, credit in self._credit.items() if credit <= 0]
            address = min(wanting or self._credit, key=self.in_use)
            give = min(free, share - self.in_use(address))
            if give <= 0:
                if not wanting:
                    break
                give = free
            self._credit[address] += give
            changes[address] = changes.get(address, 0) + give
            free -= give
        return changes
