-- Base schema for the rotation picker (subset of upstream-reference.md §2.2).
-- Extra columns beyond the ones other writers insert are nullable or defaulted.

DO $$ BEGIN
  CREATE TYPE public.freq_enum AS ENUM ('S', 'L', 'M', 'H');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

DO $$ BEGIN
  CREATE TYPE wxyc_schema.flowsheet_entry_type AS ENUM (
    'track', 'show_start', 'show_end', 'dj_join', 'dj_leave', 'talkset', 'breakpoint', 'message');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

CREATE TABLE wxyc_schema.library (
  id          serial PRIMARY KEY,
  artist_name varchar(128),
  album_title varchar(128) NOT NULL,
  label       varchar(128),
  add_date    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE wxyc_schema.library_identity (
  library_id         integer PRIMARY KEY REFERENCES wxyc_schema.library(id) ON DELETE CASCADE,
  discogs_release_id integer,
  last_verified_at   timestamptz NOT NULL DEFAULT now(),
  method             text NOT NULL DEFAULT 'manual',
  confidence         real NOT NULL DEFAULT 1.0,
  CONSTRAINT library_identity_confidence_range CHECK (confidence BETWEEN 0 AND 1)
);

CREATE TABLE wxyc_schema.rotation (
  id                            serial PRIMARY KEY,
  album_id                      integer REFERENCES wxyc_schema.library(id) ON DELETE CASCADE,
  rotation_bin                  public.freq_enum NOT NULL,
  add_date                      date NOT NULL DEFAULT CURRENT_DATE,
  kill_date                     date,
  artist_name                   varchar(128),
  album_title                   varchar(128),
  record_label                  varchar(128),
  discogs_release_id            integer,
  tracklist_lookup_attempted_at timestamptz,
  CONSTRAINT rotation_discogs_release_id_not_sentinel
    CHECK (discogs_release_id IS NULL OR discogs_release_id > 0)
);
CREATE INDEX album_id_idx ON wxyc_schema.rotation (album_id);
CREATE INDEX rotation_active_walk_idx ON wxyc_schema.rotation (rotation_bin, add_date DESC, id);

CREATE TABLE wxyc_schema.flowsheet (
  id          serial PRIMARY KEY,
  rotation_id integer REFERENCES wxyc_schema.rotation(id) ON DELETE SET NULL,
  entry_type  wxyc_schema.flowsheet_entry_type NOT NULL DEFAULT 'track',
  add_time    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX flowsheet_track_add_time_idx
  ON wxyc_schema.flowsheet (add_time DESC) WHERE entry_type = 'track';
