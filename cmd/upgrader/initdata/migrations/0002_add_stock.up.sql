-- v2 reads items.stock. Adding a column with a default keeps v1 working
-- (it never selects the column): the compatibility run of step 3.1 proves it.
ALTER TABLE items ADD COLUMN stock integer NOT NULL DEFAULT 0;
