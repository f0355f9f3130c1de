-- 0014 (issue 14): jobs pages are filled half, so that each job row's next
-- version (a one-off marked completed by its claim, a pause, an edit) fits
-- on its own page: a heap-only update, no new entry in either index of the
-- table. Full pages made every one-off's completion a new row elsewhere and
-- two index insertions: a third of the claim statement of 2,000 one-offs
-- (26 ms of 72; 14 ms with the room, 10,000 WAL records -> 4,000). The
-- price is a jobs table twice the size. Pages written before keep theirs.
ALTER TABLE jobs SET (fillfactor = 50);
