ALTER TABLE users ADD COLUMN email varchar(200);
CREATE UNIQUE INDEX users_email_idx ON users (email);
