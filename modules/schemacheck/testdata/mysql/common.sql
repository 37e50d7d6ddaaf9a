CREATE TABLE customers (
  id int NOT NULL AUTO_INCREMENT PRIMARY KEY,
  email varchar(200) NOT NULL,
  name text,
  created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  UNIQUE KEY customers_email_key (email)
) ENGINE=InnoDB;
CREATE TABLE orders (
  id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
  customer_id int NOT NULL,
  total decimal(10, 2) NOT NULL DEFAULT 0,
  status varchar(20) NOT NULL DEFAULT 'new',
  note text,
  KEY orders_status_idx (status),
  CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE
) ENGINE=InnoDB;
CREATE TABLE audit_log (id int NOT NULL, line text) ENGINE=InnoDB;
CREATE VIEW open_orders AS SELECT id, total FROM orders WHERE status = 'new';
