-- 012: adopting a source's pre-existing rows in bounded transactions.
--
-- Rows that predate rollupd (rollupd_xid IS NULL) were counted by the source's first pass in one
-- statement: on a table of 100M rows, longer than any statement timeout. They are now adopted in
-- key order (the table's id), at most rollup.max_rows_per_transaction per transaction, each
-- committed with how far it got, so a kill loses only the transaction in flight
-- (docs/design.md, "Adopting the rows that were there before").

ALTER TABLE rollupd.sources
    ADD COLUMN adopting boolean NOT NULL DEFAULT false,
    -- The key (as text) of the last row adopted; NULL before the first.
    ADD COLUMN adopted_through text;
