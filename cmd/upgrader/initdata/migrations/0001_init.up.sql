-- v1 schema: the catalogue the demo app lists at /items.
CREATE TABLE items (
    id   serial PRIMARY KEY,
    name text   NOT NULL
);
INSERT INTO items (name) VALUES ('apples'), ('pears'), ('plums');
