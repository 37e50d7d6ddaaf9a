DROP TABLE more_orders;
