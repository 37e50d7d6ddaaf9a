ALTER TABLE users ADD COLUMN email varchar(200);
CREATE UNIQUE INDEX users_email_idx ON users (email);
CREATE TYPE order_state AS ENUM ('new', 'paid');
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.name := trim(NEW.name); -- a semicolon inside a body
  RETURN NEW;
END;
$$;
