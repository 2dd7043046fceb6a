-- Nothing changes on SQLite: PostgreSQL's audit head now advances once per statement
-- (migration 0022 there: a head updated row by row in one transaction costs PostgreSQL a
-- walk over every earlier version of it), while SQLite updates the head in place, so its row
-- triggers of migration 0008 stay. The number keeps both backends at one schema version,
-- which a backup names and a restore into the other backend compares.
SELECT 1;
