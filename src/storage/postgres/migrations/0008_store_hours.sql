-- A store's opening hours (domain::opening_hours, stored in canonical form; NULL: learned from its
-- counts) and its capacity (people inside; NULL: none set).
ALTER TABLE stores ADD COLUMN opening_hours text;
ALTER TABLE stores ADD COLUMN capacity bigint;
