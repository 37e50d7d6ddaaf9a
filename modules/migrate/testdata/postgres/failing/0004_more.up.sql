BEGIN;
CREATE TABLE more_orders (
  id bigserial PRIMARY KEY,
  user_id int NOT NULL REFERENCES users (id),
  state order_state NOT NULL DEFAULT 'new',
  note text DEFAULT 'it''s; fine'
);
CREATE INDEX more_orders_user_idx ON more_orders (user_id);
COMMIT;
