CREATE TABLE orders (
  id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id int NOT NULL,
  note varchar(50) DEFAULT 'it''s; \'fine\'',
  CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB;
CREATE INDEX orders_note_idx ON orders (note);
