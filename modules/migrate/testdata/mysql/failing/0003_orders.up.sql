CREATE TABLE orders (
  id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id int NOT NULL
) ENGINE=InnoDB;

CREATE INDEX orders_user_idx
  ON orders (user_id) FOO BAR;
