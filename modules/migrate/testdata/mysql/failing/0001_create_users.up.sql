# users of the application
CREATE TABLE users (
  id int NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name text NOT NULL
) ENGINE=InnoDB;
