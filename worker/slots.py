"""A worker's capacity, one count shared by the streams of all its schedulers.

A scheduler hands a worker runs while it holds the worker's credit; the
worker gives a slot back when a run ends. Each stream's credit is drawn
from this one ledger, so what the schedulers may hand over (credit they
hold) and what is here (runs live) together never pass the capacity,
however many schedulers the worker serves. Each live stream's fair share is
the capacity over the live streams; a freed slot goes to the stream using
least among those out of credit (past its share if need be: a stream
holding credit unspent needs no more; among equals, the one granted to
longest ago). A stream that opens takes its share from the free slots, and
once its hello is delivered, from streams holding unused credit beyond
theirs (a negative credit); until then it gets nothing more (a scheduler
that cannot be reached may take a connect timeout to say so). A stream
that breaks and comes back starts from what is free, not from the whole
capacity again: the runs it handed over before are still here.

Shares are not walls: each tick (LEND_EVERY), credit a stream has held
unspent since the last tick is lent to the streams that ran out of it (a
scheduler whose shards are quiet would otherwise keep it while another's
queue waits, and with fewer slots than schedulers one would never get
any). The idle stream keeps one slot for its next run, unless a stream
that ran out has nothing here at all. A lender that gets busy again is
first in line for freed slots, being the least used.

The one way past the capacity: runs already on their way from a scheduler
when its credit is taken back (a negative credit crosses them on the wire).
They are few (one stream's dispatch in flight, at a stream's start, or a
scheduler idle for a whole tick sending just then) and are run, not refused;
the credit that settles the debt they leave frees nothing.
"""

from __future__ import annotations

Changes = dict[str, int]  # stream (scheduler address) -> credit to send it (negative: taken back)
LEND_EVERY = 0.5  # seconds; a scheduler with runs to hand over spends credit within its claim interval


class Slots:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._credit: dict[str, int] = {}  # open stream -> credit its scheduler holds unused
        self._owner: dict[str, object] = {}  # open stream -> the connection that opened it
        self._joined: set[str] = set()  # open streams whose hello was delivered
        self._runs: dict[str, int] = {}  # stream -> its runs here
        self._run_count = 0  # all runs here (asked per run: not summed each time)
        self._spent: set[str] = set()  # streams that spent credit this tick
        self._held: dict[str, int] = {}  # credit each stream held at the last tick
        self._grants = 0  # a count of grants: among equals, the one served longest ago first
        self._last_grant: dict[str, int] = {}

    def free(self) -> int:
        held = self._run_count
        for credit in self._credit.values():
            if credit > 0:
                held += credit
        return self.capacity - held

    def in_use(self, address: str) -> int:
        """Credit the stream's scheduler holds plus the runs it handed over that are here."""
        return self._credit.get(address, 0) + self._runs.get(address, 0)

    def share(self, joining: int = 0) -> int:
        return -(-self.capacity // max(1, len(self._joined) + joining))

    def open(self, address: str, owner: object = None) -> int:
        """A stream opens: the credit its hello grants, from free slots only.
        Until its hello is delivered (:meth:`joined`) it is given nothing
        more and takes nothing: a scheduler that cannot be reached may take
        a connect timeout to say so."""
        self._credit[address], self._owner[address] = 0, owner
        self._joined.discard(address)
        granted = max(0, min(self.free(), self.share(joining=1) - self._runs.get(address, 0)))
        self._add(address, granted, {})
        return granted

    def joined(self, address: str) -> Changes:
        """The stream is up: credit beyond their share that others hold
        unused is taken back, up to what this one lacks of its own."""
        self._joined.add(address)
        changes: Changes = {}
        share, lacking = self.share(), self.share() - self.in_use(address)
        for other in sorted(self._joined, key=self.in_use, reverse=True):
            if lacking <= self.free():
                break
            back = min(self._credit[other], self.in_use(other) - share, lacking - self.free())
            if back > 0 and other != address:
                self._credit[other] -= back
                changes[other] = -back
        return self._hand_out(changes)

    def close(self, address: str, owner: object = None) -> Changes:
        """The stream broke or its scheduler left: its unused credit is
        gone with it (its runs here still hold their slots). Only the
        connection that opened it closes it (a redial may have opened it anew)."""
        if address not in self._credit or self._owner.get(address) is not owner:
            return {}
        del self._credit[address], self._owner[address]
        self._joined.discard(address)
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
        self.freed(address)
        return self.hand_out()

    def freed(self, address: str) -> None:
        """As :meth:`ended`, the slot left free until :meth:`hand_out`: the
        runs ending in one turn of the loop are handed out once (3.5 us a
        run here, a twentieth of a worker's no-op run)."""
        runs = self._runs.get(address, 0)
        if runs > 1:
            self._runs[address] = runs - 1
        elif runs == 1:
            del self._runs[address]
        if runs:
            self._run_count -= 1

    def hand_out(self) -> Changes:
        """Free slots to the streams that want them (see :meth:`_hand_out`)."""
        return self._hand_out({})

    def lend_idle(self) -> Changes:
        """Once a tick: credit held unspent all tick goes to the streams that
        ran out of it (see above), in even parts, the least used first."""
        spent, self._spent = self._spent, set()
        held, self._held = self._held, {a: self._credit[a] for a in self._joined}
        wanting = [a for a in self._joined if self._credit[a] <= 0]
        idle = [a for a in self._joined if self._credit[a] > 0 and a not in spent]
        if not wanting or not idle:
            return {}
        keep = 0 if any(self.in_use(a) <= 0 for a in wanting) else 1
        changes: Changes = {}
        for lender in idle:
            lent = min(self._credit[lender], held.get(lender, 0)) - keep
            if lent <= 0:
                continue
            self._add(lender, -lent, changes)
            for i, borrower in enumerate(sorted(wanting, key=self._need)):
                self._add(borrower, lent // len(wanting) + (1 if i < lent % len(wanting) else 0), changes)
        return self._hand_out(changes)  # what went to settle a negative credit is still free

    def _hand_out(self, changes: Changes) -> Changes:
        """Free slots to the streams out of credit (their schedulers spend
        what they get), the least used first, up to their share, or past it
        when every stream out of credit has its share: a stream holding
        credit unspent needs no more. With none out of credit, to the least
        used below its share. (Once per turn of the loop in which runs ended.)"""
        free = self.free()
        if free <= 0 or not self._joined:
            return changes
        share = self.share()
        while free > 0:
            wanting = [a for a in self._joined if self._credit[a] <= 0]
            address = min(wanting or self._joined, key=self._need)
            give = min(free, share - self.in_use(address))
            if give <= 0:
                if not wanting:
                    break
                give = free
            before = self._credit[address]
            self._add(address, give, changes)
            # Credit that settles a debt (a negative credit) frees nothing.
            free -= max(0, before + give) - max(0, before)
        return changes

    def _need(self, address: str) -> tuple[int, int]:
        """Least used first; among equals, the one granted to longest ago."""
        return self.in_use(address), self._last_grant.get(address, 0)

    def _add(self, address: str, credit: int, changes: Changes) -> None:
        if credit > 0:
            self._grants += 1
            self._last_grant[address] = self._grants
        self._credit[address] += credit
        changes[address] = changes.get(address, 0) + credit
