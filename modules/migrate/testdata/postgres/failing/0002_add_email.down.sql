DROP FUNCTION touch();
DROP TYPE order_state;
DROP INDEX users_email_idx;
ALTER TABLE users DROP COLUMN email;
