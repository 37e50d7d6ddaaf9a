CREATE TABLE orders (
  id bigserial PRIMARY KEY,
  user_id int NOT NULL REFERENCES users (id)
);

-- the next statement names a column that does not exist
INSERT INTO orders (user_id)
  SELECT customer_id FROM users;
