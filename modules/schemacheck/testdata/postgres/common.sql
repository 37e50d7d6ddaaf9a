CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE customers (
  id serial PRIMARY KEY,
  email varchar(200) NOT NULL,
  name text,
  mood mood DEFAULT 'ok',
  created_at timestamp NOT NULL DEFAULT now(),
  CONSTRAINT customers_email_key UNIQUE (email)
);
CREATE TABLE orders (
  id bigserial PRIMARY KEY,
  customer_id int NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
  total numeric(10, 2) NOT NULL DEFAULT 0,
  status varchar(20) NOT NULL DEFAULT 'new',
  note text
);
CREATE INDEX orders_status_idx ON orders (status);
CREATE TABLE audit_log (id int NOT NULL, line text);
CREATE VIEW open_orders AS SELECT id, total FROM orders WHERE status = 'new';
