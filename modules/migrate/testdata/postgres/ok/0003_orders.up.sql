BEGIN;
CREATE TABLE orders (
  id bigserial PRIMARY KEY,
  user_id int NOT NULL REFERENCES users (id),
  state order_state NOT NULL DEFAULT 'new',
  note text DEFAULT 'it''s; fine'
);
CREATE INDEX orders_user_idx ON orders (user_id);
COMMIT;
