-- Temporal's own databases live beside Huddle's on the same server; auto-setup creates their schemas.
CREATE DATABASE temporal OWNER huddle;
CREATE DATABASE temporal_visibility OWNER huddle;
-- Huddle's migration creates btree_gist itself; it needs the extension to be installable.
\connect huddle
CREATE EXTENSION IF NOT EXISTS btree_gist;
