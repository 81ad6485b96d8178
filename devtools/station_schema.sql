-- =============================================================================
-- Station database fixture: a faithful subset of the WXYC station schema
-- =============================================================================
--
-- What this is
--   A test fixture for this Python service. It recreates, in an empty
--   PostgreSQL database, the part of the station's real schema that the
--   service reads or that fires when the service's tests write rows:
--     tables   artists, genres, format, labels, genre_artist_crossreference,
--              library, library_identity, rotation, flowsheet
--     support  library_watermark, flowsheet_watermark, rotation_cards
--              (written by triggers on the tables above; see deviations)
--     types    public.freq_enum and the station-schema enums those tables use
--     CDC      public.cdc_notify() plus the per-table cdc_* row triggers
--     other    every other trigger on those tables that writes data, and the
--              plpgsql/sql functions their indexes and triggers need.
--   The real schema is owned by the TypeScript backend WXYC/Backend-Service
--   (Drizzle migrations under shared/database/src/migrations/). This file is
--   written independently from that repository's facts; it is not a copy of
--   its migrations.
--
-- Schema name
--   Every station-schema object is written as __STATION__.<name>. The
--   service substitutes WXYC_SCHEMA_NAME (default wxyc_schema) before
--   applying. public.freq_enum and public.cdc_notify() live in public, as
--   upstream. The file is meant to be applied once, to an empty database.
--
-- Upstream state reflected
--   * Declared structure (columns, types, NOT NULL, defaults, generated
--     columns, PKs, FKs + ON DELETE, unique constraints, CHECKs, Drizzle-
--     declared indexes, enums, the legacy_release_id sequence): the Drizzle
--     snapshot meta/0191_snapshot.json at Backend-Service commit 7bc5bf8b
--     (newest snapshot stored; it is newer than the newest readable
--     schema.ts, 0111e4cc, and adds rotation.moved_from_rotation_id,
--     genre_artist_crossreference.code_comp_letter and
--     rotation_cards.last_changed_at). Cross-checked against schema.ts
--     0111e4cc and the migrations below.
--   * Objects that only exist in raw-SQL migrations:
--       0046 cdc_* triggers (+ 0096 cdc_notify oversized/error fallback)
--       0047 REPLICA IDENTITY for genre_artist_crossreference
--       0060 cascade_library_artist_name trigger on artists
--       0084 flowsheet.updated_at bump trigger, flowsheet_watermark + trigger
--       0092 normalize_artist_name() + artists_normalized_name_idx
--       0104 library_watermark + touch_library_watermark()
--       0105 touch_library_watermark_from_{artists,genres,format,gac,rotation}
--       0134 fold_artist_name() + artists_fold_name_idx
--       0137 library_legacy_release_id_seq (floor 1,000,000) as the default
--       0142 -> BS#2826 (migration after 0184) touch_library_watermark on
--            library narrowed to UPDATE OF <15 exported columns>
--       0191 text_match_key() + library_text_match_album_idx
--       BS#2809 rotation.moved_from_rotation_id (self FK, ON DELETE SET NULL)
--       BS#2833 genre_artist_crossreference.code_comp_letter + checks/index
--       rotation-card stamp migration: stamp_rotation_card_on_insert_delete,
--            stamp_rotation_card_on_update
--
-- Intentional deviations from the real schema
--   1. pg_trgm GIN indexes are omitted (this fixture needs no extension):
--        artists.artist_name_trgm_idx, library.title_trgm_idx,
--        library.album_artist_trgm_idx, library.library_artist_name_trgm_idx,
--        flowsheet.flowsheet_artist_name_trgm_idx,
--        flowsheet.flowsheet_track_title_trgm_idx,
--        flowsheet.flowsheet_album_title_trgm_idx,
--        flowsheet.flowsheet_record_label_trgm_idx.
--      (tsvector GIN indexes need no extension and are kept.)
--   2. FK flowsheet.show_id -> shows(id) ON DELETE SET NULL is not created
--      (shows is not part of this fixture); the nullable column is kept.
--   3. rotation_cards is included as a support table (all its real columns,
--      its unique index, no triggers of its own) because rotation.card_id
--      references it and two rotation triggers update it. The
--      rotation.card_id FK is therefore kept.
--   4. library_watermark and flowsheet_watermark are included (with their
--      singleton seed rows) because statement triggers on the fixture tables
--      write them.
--   5. Not reproduced: views library_artist_view and rotation_library_view,
--      the materialized view album_plays, every other station table, the
--      helper function touch_library_watermark_now(), the wxyc_cdc
--      publication, grants/ownership and COMMENTs.
--   6. Columns appear in Drizzle declaration order; in production, columns
--      added later by ALTER TABLE sit at the end of the physical row. Only a
--      positional INSERT or SELECT * ordering could notice.
--   7. public.cdc_notify() is an independent implementation with the same
--      channels, thresholds, payload keys and return values as upstream
--      (migration 0096); only its WARNING texts differ.
-- =============================================================================

CREATE SCHEMA IF NOT EXISTS __STATION__;

-- -----------------------------------------------------------------------------
-- Enum types
-- -----------------------------------------------------------------------------

-- Rotation bins live in public (a plain pgEnum upstream).
DO $$
BEGIN
  IF to_regtype('public.freq_enum') IS NULL THEN
    CREATE TYPE public.freq_enum AS ENUM ('S', 'L', 'M', 'H');
  END IF;
END
$$;

CREATE TYPE __STATION__.discogs_release_id_source_enum AS ENUM (
  'tubafrenzy_paste',
  'lml_offline_backfill',
  'discogs_direct_backfill',
  'library_identity',
  'md_verified',
  'recheck_after_unavailable'
);

CREATE TYPE __STATION__.flowsheet_entry_type AS ENUM (
  'track',
  'show_start',
  'show_end',
  'dj_join',
  'dj_leave',
  'talkset',
  'breakpoint',
  'message'
);

CREATE TYPE __STATION__.metadata_status_enum AS ENUM (
  'pending',
  'enriching',
  'enriched_match',
  'enriched_no_match',
  'failed_no_retry'
);

-- -----------------------------------------------------------------------------
-- Sequences not owned by a serial column
-- -----------------------------------------------------------------------------

-- Backend-minted legacy_release_id values start at one million so they stay
-- clear of the legacy tubafrenzy id space. Not OWNED BY the column upstream.
CREATE SEQUENCE IF NOT EXISTS __STATION__.library_legacy_release_id_seq
  INCREMENT BY 1
  MINVALUE 1000000
  MAXVALUE 9223372036854775807
  START WITH 1000000
  CACHE 1;

-- -----------------------------------------------------------------------------
-- Pure SQL helper functions used by expression indexes
-- -----------------------------------------------------------------------------

-- Lowercase and drop one leading "the" + ASCII whitespace.
CREATE OR REPLACE FUNCTION __STATION__.normalize_artist_name(input text)
  RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $fn$
  SELECT lower(regexp_replace(coalesce(input, ''), '^the[ \t\n\r\f\v]+', '', 'i'));
$fn$;

-- Unicode-form and diacritic insensitive, lowercased key.
CREATE OR REPLACE FUNCTION __STATION__.fold_artist_name(input text)
  RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $fn$
  SELECT lower(regexp_replace(normalize(coalesce(input, ''), NFD), '[\u0300-\u036f]', '', 'g'));
$fn$;

-- fold_artist_name, minus a leading "the ", minus every non-alphanumeric run.
CREATE OR REPLACE FUNCTION __STATION__.text_match_key(input text)
  RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $fn$
  SELECT regexp_replace(
           regexp_replace(__STATION__.fold_artist_name(input), '^the[ \t\n\r\f\v]+', ''),
           '[^[:alnum:]]+', '', 'g');
$fn$;

-- -----------------------------------------------------------------------------
-- Tables
-- -----------------------------------------------------------------------------

CREATE TABLE __STATION__.artists (
  id                    serial       PRIMARY KEY,
  artist_name           varchar(128) NOT NULL,
  alphabetical_name     varchar(128) NOT NULL,
  code_letters          varchar(4)   NOT NULL,
  add_date              date         NOT NULL DEFAULT now(),
  last_modified         timestamptz  NOT NULL DEFAULT now(),
  discogs_artist_id     integer,
  musicbrainz_artist_id varchar(64),
  wikidata_qid          varchar(32),
  spotify_artist_id     varchar(64),
  apple_music_artist_id varchar(64),
  bandcamp_id           varchar(255)
);
CREATE INDEX code_letters_idx
  ON __STATION__.artists USING btree (code_letters);
CREATE INDEX artists_normalized_name_idx
  ON __STATION__.artists USING btree (__STATION__.normalize_artist_name(artist_name));
CREATE INDEX artists_fold_name_idx
  ON __STATION__.artists USING btree (__STATION__.fold_artist_name(artist_name));
-- omitted (pg_trgm): artist_name_trgm_idx

CREATE TABLE __STATION__.genres (
  id            serial      PRIMARY KEY,
  genre_name    varchar(64) NOT NULL,
  description   text,
  plays         integer     NOT NULL DEFAULT 0,
  add_date      date        NOT NULL DEFAULT now(),
  last_modified timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE __STATION__.format (
  id          serial  PRIMARY KEY,
  format_name varchar NOT NULL,
  add_date    date    NOT NULL DEFAULT now()
);

CREATE TABLE __STATION__.labels (
  id              serial       PRIMARY KEY,
  label_name      varchar(128) NOT NULL,
  parent_label_id integer,     -- no FK upstream
  CONSTRAINT labels_label_name_unique UNIQUE (label_name)
);

CREATE TABLE __STATION__.genre_artist_crossreference (
  artist_id         integer    NOT NULL,
  genre_id          integer    NOT NULL,
  artist_genre_code integer    NOT NULL,
  code_comp_letter  varchar(1),
  CONSTRAINT genre_artist_crossreference_artist_id_artists_id_fk
    FOREIGN KEY (artist_id) REFERENCES __STATION__.artists (id)
    ON DELETE NO ACTION ON UPDATE NO ACTION,
  CONSTRAINT genre_artist_crossreference_genre_id_genres_id_fk
    FOREIGN KEY (genre_id) REFERENCES __STATION__.genres (id)
    ON DELETE NO ACTION ON UPDATE NO ACTION,
  CONSTRAINT genre_artist_crossreference_code_comp_letter_shape_ck
    CHECK (code_comp_letter ~ '^[A-Z]$'),
  CONSTRAINT genre_artist_crossreference_code_comp_letter_slot_ck
    CHECK (code_comp_letter IS NULL OR artist_genre_code = 0)
);
CREATE UNIQUE INDEX artist_genre_key
  ON __STATION__.genre_artist_crossreference USING btree (artist_id, genre_id);
CREATE UNIQUE INDEX genre_artist_crossreference_genre_comp_letter_key
  ON __STATION__.genre_artist_crossreference USING btree (genre_id, code_comp_letter)
  WHERE code_comp_letter IS NOT NULL;
-- The table has no primary key; upstream gives it a replica identity.
ALTER TABLE __STATION__.genre_artist_crossreference
  REPLICA IDENTITY USING INDEX artist_genre_key;

CREATE TABLE __STATION__.library (
  id                           serial       PRIMARY KEY,
  artist_id                    integer      NOT NULL,
  genre_id                     integer      NOT NULL,
  format_id                    integer      NOT NULL,
  alternate_artist_name        varchar(128),
  album_artist                 varchar(128),
  album_title                  varchar(128) NOT NULL,
  label                        varchar(128),
  label_id                     integer,
  code_number                  smallint     NOT NULL,
  code_volume_letters          varchar(4),
  disc_quantity                smallint     NOT NULL DEFAULT 1,
  plays                        integer      NOT NULL DEFAULT 0,
  legacy_release_id            integer      NOT NULL
    DEFAULT nextval('__STATION__.library_legacy_release_id_seq'::regclass),
  add_date                     timestamptz  NOT NULL DEFAULT now(),
  last_modified                timestamptz  NOT NULL DEFAULT now(),
  date_lost                    timestamptz,
  date_found                   timestamptz,
  on_streaming                 boolean,
  artwork_url                  varchar(512),
  artwork_lookup_attempted_at  timestamptz,
  artist_name                  varchar(128),  -- denormalised from artists; kept in sync on artists UPDATE only
  canonical_entity_id          text,
  canonical_entity_confidence  real,
  canonical_entity_resolved_at timestamptz,
  unresolved_attempted_at      timestamptz,
  discogs_unavailable          boolean      NOT NULL DEFAULT false,
  discogs_unavailable_note     varchar(500),
  last_discogs_recheck_at      timestamptz,
  search_doc                   tsvector GENERATED ALWAYS AS (
    ts_delete(
      setweight(to_tsvector('simple', coalesce(artist_name, '')), 'A')
      || to_tsvector('simple', 'wxycsearchdocgap wxycsearchdocgap wxycsearchdocgap')
      || setweight(to_tsvector('simple', coalesce(album_title, '')), 'B'),
      'wxycsearchdocgap')
  ) STORED,
  CONSTRAINT library_artist_id_artists_id_fk
    FOREIGN KEY (artist_id) REFERENCES __STATION__.artists (id)
    ON DELETE NO ACTION ON UPDATE NO ACTION,
  CONSTRAINT library_genre_id_genres_id_fk
    FOREIGN KEY (genre_id) REFERENCES __STATION__.genres (id)
    ON DELETE NO ACTION ON UPDATE NO ACTION,
  CONSTRAINT library_format_id_format_id_fk
    FOREIGN KEY (format_id) REFERENCES __STATION__.format (id)
    ON DELETE NO ACTION ON UPDATE NO ACTION,
  CONSTRAINT library_label_id_labels_id_fk
    FOREIGN KEY (label_id) REFERENCES __STATION__.labels (id)
    ON DELETE NO ACTION ON UPDATE NO ACTION,
  CONSTRAINT library_discogs_unavailable_note_check
    CHECK (discogs_unavailable OR discogs_unavailable_note IS NULL)
);
CREATE INDEX library_norm_album_title_idx
  ON __STATION__.library USING btree (lower(trim(coalesce(album_title, ''))));
CREATE INDEX genre_id_idx
  ON __STATION__.library USING btree (genre_id);
CREATE INDEX format_id_idx
  ON __STATION__.library USING btree (format_id);
CREATE INDEX artist_id_idx
  ON __STATION__.library USING btree (artist_id);
CREATE UNIQUE INDEX library_legacy_release_id_idx
  ON __STATION__.library USING btree (legacy_release_id);
CREATE INDEX library_search_doc_idx
  ON __STATION__.library USING gin (search_doc);
CREATE INDEX library_canonical_entity_id_idx
  ON __STATION__.library USING btree (canonical_entity_id);
CREATE INDEX library_discogs_unavailable_idx
  ON __STATION__.library USING btree (discogs_unavailable)
  WHERE discogs_unavailable = true;
CREATE INDEX library_text_match_album_idx
  ON __STATION__.library USING btree (__STATION__.text_match_key(album_title));
-- omitted (pg_trgm): title_trgm_idx, album_artist_trgm_idx, library_artist_name_trgm_idx

CREATE TABLE __STATION__.library_identity (
  library_id                     integer     PRIMARY KEY,
  discogs_master_id              integer,
  discogs_release_id             integer,
  musicbrainz_release_group_mbid uuid,
  musicbrainz_release_mbid       uuid,
  musicbrainz_recording_mbid     uuid,
  wikidata_qid                   text,
  spotify_id                     text,
  apple_music_id                 text,
  last_verified_at               timestamptz NOT NULL,
  method                         text        NOT NULL,
  confidence                     real        NOT NULL,
  agreement_sources              text,
  notes                          text,
  distinct_unresolved_sources    integer GENERATED ALWAYS AS (
      (CASE WHEN discogs_master_id              IS NULL THEN 1 ELSE 0 END)
    + (CASE WHEN discogs_release_id             IS NULL THEN 1 ELSE 0 END)
    + (CASE WHEN musicbrainz_release_group_mbid IS NULL THEN 1 ELSE 0 END)
    + (CASE WHEN musicbrainz_release_mbid       IS NULL THEN 1 ELSE 0 END)
    + (CASE WHEN musicbrainz_recording_mbid     IS NULL THEN 1 ELSE 0 END)
    + (CASE WHEN wikidata_qid                   IS NULL THEN 1 ELSE 0 END)
    + (CASE WHEN spotify_id                     IS NULL THEN 1 ELSE 0 END)
    + (CASE WHEN apple_music_id                 IS NULL THEN 1 ELSE 0 END)
  ) STORED,
  CONSTRAINT library_identity_library_id_library_id_fk
    FOREIGN KEY (library_id) REFERENCES __STATION__.library (id)
    ON DELETE NO ACTION ON UPDATE NO ACTION,
  CONSTRAINT library_identity_confidence_range
    CHECK (confidence BETWEEN 0 AND 1)
);
CREATE INDEX library_identity_audit_idx
  ON __STATION__.library_identity USING btree (confidence, distinct_unresolved_sources DESC);

-- Support table (deviation 3): the physical cards a rotation bin is split into.
CREATE TABLE __STATION__.rotation_cards (
  id              serial           PRIMARY KEY,
  bin             public.freq_enum NOT NULL,
  number          integer          NOT NULL,
  name            text,
  last_changed_at timestamptz
);
CREATE UNIQUE INDEX rotation_cards_bin_number_idx
  ON __STATION__.rotation_cards USING btree (bin, number);

CREATE TABLE __STATION__.rotation (
  id                                      serial           PRIMARY KEY,
  album_id                                integer,
  moved_from_rotation_id                  integer,
  legacy_rotation_id                      integer,
  legacy_library_release_id               integer,
  rotation_bin                            public.freq_enum NOT NULL,
  add_date                                date             NOT NULL DEFAULT now(),
  kill_date                               date,
  artist_name                             varchar(128),
  album_title                             varchar(128),
  record_label                            varchar(128),
  format_id                               integer,
  label_id                                integer,
  discogs_release_id                      integer,
  discogs_release_id_source               __STATION__.discogs_release_id_source_enum
                                          NOT NULL DEFAULT 'tubafrenzy_paste',
  discogs_release_id_resolve_attempted_at timestamptz,
  tracklist_lookup_attempted_at           timestamptz,
  lml_identity_id                         integer,         -- LML-side id, no FK upstream
  card_id                                 integer,
  CONSTRAINT rotation_album_id_library_id_fk
    FOREIGN KEY (album_id) REFERENCES __STATION__.library (id)
    ON DELETE CASCADE ON UPDATE NO ACTION,
  CONSTRAINT rotation_moved_from_rotation_id_rotation_id_fk
    FOREIGN KEY (moved_from_rotation_id) REFERENCES __STATION__.rotation (id)
    ON DELETE SET NULL ON UPDATE NO ACTION,
  CONSTRAINT rotation_format_id_format_id_fk
    FOREIGN KEY (format_id) REFERENCES __STATION__.format (id)
    ON DELETE NO ACTION ON UPDATE NO ACTION,
  CONSTRAINT rotation_label_id_labels_id_fk
    FOREIGN KEY (label_id) REFERENCES __STATION__.labels (id)
    ON DELETE NO ACTION ON UPDATE NO ACTION,
  CONSTRAINT rotation_card_id_rotation_cards_id_fk
    FOREIGN KEY (card_id) REFERENCES __STATION__.rotation_cards (id)
    ON DELETE SET NULL ON UPDATE NO ACTION,
  CONSTRAINT rotation_discogs_release_id_not_sentinel
    CHECK (discogs_release_id IS NULL OR discogs_release_id > 0)
);
CREATE INDEX album_id_idx
  ON __STATION__.rotation USING btree (album_id);
CREATE INDEX rotation_card_id_full_idx
  ON __STATION__.rotation USING btree (card_id);
CREATE INDEX rotation_norm_artist_album_idx
  ON __STATION__.rotation USING btree (
    lower(trim(coalesce(artist_name, ''))),
    lower(trim(coalesce(album_title, ''))));
CREATE INDEX rotation_moved_from_rotation_id_idx
  ON __STATION__.rotation USING btree (moved_from_rotation_id);
CREATE UNIQUE INDEX rotation_legacy_rotation_id_idx
  ON __STATION__.rotation USING btree (legacy_rotation_id);
-- Upstream deliberately has NO unique index on (album_id, rotation_bin).

CREATE TABLE __STATION__.flowsheet (
  id                            serial       PRIMARY KEY,
  show_id                       integer,     -- real FK -> shows(id) ON DELETE SET NULL not created (deviation 2)
  album_id                      integer,
  rotation_id                   integer,
  legacy_entry_id               integer,
  legacy_release_id             integer,
  entry_type                    __STATION__.flowsheet_entry_type NOT NULL DEFAULT 'track',
  track_title                   varchar(128),
  track_position                text,
  album_title                   varchar(128),
  artist_name                   varchar(128),
  record_label                  varchar(128),
  label_id                      integer,
  play_order                    integer      NOT NULL,   -- no default upstream
  request_flag                  boolean      NOT NULL DEFAULT false,
  segue                         boolean      NOT NULL DEFAULT false,
  message                       varchar(250),
  add_time                      timestamptz  NOT NULL DEFAULT now(),
  radio_hour                    timestamptz,
  updated_at                    timestamptz  NOT NULL DEFAULT now(),  -- overwritten by bump_flowsheet_updated_at
  artwork_url                   varchar(512),
  discogs_url                   varchar(512),
  release_year                  smallint,
  spotify_url                   varchar(512),
  apple_music_url               varchar(512),
  youtube_music_url             varchar(512),
  bandcamp_url                  varchar(512),
  soundcloud_url                varchar(512),
  artist_bio                    text,
  artist_wikipedia_url          varchar(512),
  dj_name                       text,
  linkage_source                text,
  linkage_confidence            real,
  linked_at                     timestamptz,
  composer                      text,
  composer_source               text,
  legacy_link_attempted_at      timestamptz,
  metadata_attempt_at           timestamptz,
  metadata_status               __STATION__.metadata_status_enum NOT NULL DEFAULT 'pending',
  enriching_since               timestamptz,
  no_match_recheck_attempted_at timestamptz,
  no_match_evidence             jsonb,
  search_doc                    tsvector GENERATED ALWAYS AS (
       setweight(to_tsvector('simple', coalesce(artist_name, '')), 'A')
    || setweight(to_tsvector('simple', coalesce(track_title, '')), 'B')
    || setweight(to_tsvector('simple', coalesce(dj_name, '')), 'B')
    || setweight(to_tsvector('simple', coalesce(album_title, '')), 'C')
    || setweight(to_tsvector('simple', coalesce(record_label, '')), 'D')
  ) STORED,
  CONSTRAINT flowsheet_album_id_library_id_fk
    FOREIGN KEY (album_id) REFERENCES __STATION__.library (id)
    ON DELETE SET NULL ON UPDATE NO ACTION,
  CONSTRAINT flowsheet_rotation_id_rotation_id_fk
    FOREIGN KEY (rotation_id) REFERENCES __STATION__.rotation (id)
    ON DELETE SET NULL ON UPDATE NO ACTION,
  CONSTRAINT flowsheet_label_id_labels_id_fk
    FOREIGN KEY (label_id) REFERENCES __STATION__.labels (id)
    ON DELETE NO ACTION ON UPDATE NO ACTION
);
CREATE UNIQUE INDEX flowsheet_legacy_entry_id_idx
  ON __STATION__.flowsheet USING btree (legacy_entry_id);
CREATE INDEX flowsheet_legacy_release_id_idx
  ON __STATION__.flowsheet USING btree (legacy_release_id);
CREATE INDEX flowsheet_track_add_time_idx
  ON __STATION__.flowsheet USING btree (add_time DESC)
  WHERE entry_type = 'track';
CREATE INDEX flowsheet_add_time_idx
  ON __STATION__.flowsheet USING btree (add_time);
CREATE INDEX flowsheet_search_doc_idx
  ON __STATION__.flowsheet USING gin (search_doc);
CREATE INDEX flowsheet_album_link_lookup_idx
  ON __STATION__.flowsheet USING btree (
    (lower(trim(artist_name)) || '-' || lower(trim(coalesce(album_title, '')))))
  WHERE album_id IS NOT NULL;
CREATE INDEX flowsheet_show_id_idx
  ON __STATION__.flowsheet USING btree (show_id);
CREATE UNIQUE INDEX flowsheet_show_radio_hour_breakpoint_idx
  ON __STATION__.flowsheet USING btree (show_id, radio_hour)
  WHERE entry_type = 'breakpoint' AND radio_hour IS NOT NULL;
CREATE INDEX flowsheet_show_id_play_order_idx
  ON __STATION__.flowsheet USING btree (show_id, play_order DESC);
CREATE INDEX flowsheet_updated_at_idx
  ON __STATION__.flowsheet USING btree (updated_at DESC);
CREATE INDEX flowsheet_metadata_status_pending_idx
  ON __STATION__.flowsheet USING btree (id)
  WHERE entry_type = 'track' AND artist_name IS NOT NULL AND metadata_status = 'pending';
CREATE INDEX flowsheet_metadata_status_enriching_stale_idx
  ON __STATION__.flowsheet USING btree (enriching_since)
  WHERE metadata_status = 'enriching';
CREATE INDEX flowsheet_album_id_linked_idx
  ON __STATION__.flowsheet USING btree (album_id, metadata_attempt_at)
  WHERE album_id IS NOT NULL;
CREATE INDEX flowsheet_rotation_no_match_idx
  ON __STATION__.flowsheet USING btree (rotation_id)
  WHERE metadata_status = 'enriched_no_match' AND rotation_id IS NOT NULL;
CREATE INDEX flowsheet_rotation_id_idx
  ON __STATION__.flowsheet USING btree (rotation_id)
  WHERE rotation_id IS NOT NULL;
CREATE INDEX flowsheet_no_match_recheck_id_desc_idx
  ON __STATION__.flowsheet USING btree (
    no_match_recheck_attempted_at ASC NULLS FIRST,
    id DESC NULLS FIRST)
  WHERE metadata_status = 'enriched_no_match' AND entry_type = 'track' AND artist_name IS NOT NULL;
-- omitted (pg_trgm): flowsheet_artist_name_trgm_idx, flowsheet_track_title_trgm_idx,
--                    flowsheet_album_title_trgm_idx, flowsheet_record_label_trgm_idx

-- Single-row freshness watermarks written by statement triggers (deviation 4).
CREATE TABLE __STATION__.library_watermark (
  id               boolean     PRIMARY KEY DEFAULT true,
  last_modified_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT library_watermark_singleton CHECK (id = true)
);
INSERT INTO __STATION__.library_watermark (id, last_modified_at)
  VALUES (true, now()) ON CONFLICT DO NOTHING;

CREATE TABLE __STATION__.flowsheet_watermark (
  id               boolean     PRIMARY KEY DEFAULT true,
  last_modified_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT flowsheet_watermark_singleton CHECK (id = true)
);
INSERT INTO __STATION__.flowsheet_watermark (id, last_modified_at)
  VALUES (true, now()) ON CONFLICT DO NOTHING;

-- -----------------------------------------------------------------------------
-- Change-data-capture notifier (public schema)
-- -----------------------------------------------------------------------------
-- Channels and payloads:
--   cdc            {table, schema, action, data, timestamp}
--                  data = the row after the change (the removed row on DELETE)
--                  timestamp = epoch milliseconds (bigint) from clock_timestamp()
--   cdc_oversized  sent instead of cdc when the cdc payload text is longer
--                  than 7800 bytes: {table, schema, action, primary_key
--                  (the row's "id" as text, or null), payload_bytes,
--                  timestamp, reason: 'payload_too_large'}
--   cdc_error      sent when building/sending the notification fails:
--                  {table, schema, action, sqlstate, sqlerrm, timestamp,
--                  reason: 'trigger_exception'}
-- A notification failure never aborts the writing statement.
CREATE OR REPLACE FUNCTION public.cdc_notify()
  RETURNS trigger
  LANGUAGE plpgsql
AS $fn$
DECLARE
  changed_row  jsonb;
  message      text;
  message_size integer;
BEGIN
  IF TG_OP = 'DELETE' THEN
    changed_row := to_jsonb(OLD);
  ELSE
    changed_row := to_jsonb(NEW);
  END IF;

  BEGIN
    message := jsonb_build_object(
                 'table',     TG_TABLE_NAME,
                 'schema',    TG_TABLE_SCHEMA,
                 'action',    TG_OP,
                 'data',      changed_row,
                 'timestamp', (extract(epoch FROM clock_timestamp()) * 1000)::bigint
               )::text;
    message_size := octet_length(message);

    IF message_size <= 7800 THEN
      PERFORM pg_notify('cdc', message);
    ELSE
      PERFORM pg_notify(
        'cdc_oversized',
        jsonb_build_object(
          'table',         TG_TABLE_NAME,
          'schema',        TG_TABLE_SCHEMA,
          'action',        TG_OP,
          'primary_key',   changed_row ->> 'id',
          'payload_bytes', message_size,
          'timestamp',     (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
          'reason',        'payload_too_large'
        )::text);
      RAISE WARNING 'cdc_notify: % % payload of % bytes sent to cdc_oversized (id %)',
        TG_TABLE_NAME, TG_OP, message_size, coalesce(changed_row ->> 'id', 'n/a');
    END IF;
  EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'cdc_notify: % % failed [%] %', TG_TABLE_NAME, TG_OP, SQLSTATE, SQLERRM;
    BEGIN
      PERFORM pg_notify(
        'cdc_error',
        jsonb_build_object(
          'table',     TG_TABLE_NAME,
          'schema',    TG_TABLE_SCHEMA,
          'action',    TG_OP,
          'sqlstate',  SQLSTATE,
          'sqlerrm',   SQLERRM,
          'timestamp', (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
          'reason',    'trigger_exception'
        )::text);
    EXCEPTION WHEN OTHERS THEN
      NULL;  -- nothing further can be reported
    END;
  END;

  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NEW;
END;
$fn$;

-- -----------------------------------------------------------------------------
-- Data-changing trigger functions (station schema)
-- -----------------------------------------------------------------------------

-- artists.artist_name -> library.artist_name for that artist's rows.
CREATE OR REPLACE FUNCTION __STATION__.cascade_library_artist_name()
  RETURNS trigger
  LANGUAGE plpgsql
AS $fn$
BEGIN
  UPDATE __STATION__.library AS l
     SET artist_name = NEW.artist_name
   WHERE l.artist_id = NEW.id
     AND l.artist_name IS DISTINCT FROM NEW.artist_name;
  RETURN NULL;
END;
$fn$;

-- Catalog watermark: moves forward to now(), never back, no +1 s floor.
CREATE OR REPLACE FUNCTION __STATION__.touch_library_watermark()
  RETURNS trigger
  LANGUAGE plpgsql
AS $fn$
BEGIN
  UPDATE __STATION__.library_watermark
     SET last_modified_at = GREATEST(now(), last_modified_at)
   WHERE id = true;
  RETURN NULL;
END;
$fn$;

-- Flowsheet watermark: every statement advances it by at least one second.
CREATE OR REPLACE FUNCTION __STATION__.touch_flowsheet_watermark()
  RETURNS trigger
  LANGUAGE plpgsql
AS $fn$
BEGIN
  UPDATE __STATION__.flowsheet_watermark
     SET last_modified_at = GREATEST(now(), last_modified_at + interval '1 second')
   WHERE id = true;
  RETURN NULL;
END;
$fn$;

-- flowsheet.updated_at is always now() after any INSERT or UPDATE.
CREATE OR REPLACE FUNCTION __STATION__.bump_flowsheet_updated_at()
  RETURNS trigger
  LANGUAGE plpgsql
AS $fn$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END;
$fn$;

-- Stamp the rotation card(s) a rotation row joins, leaves, or is killed on.
CREATE OR REPLACE FUNCTION __STATION__.stamp_rotation_card_last_changed()
  RETURNS trigger
  LANGUAGE plpgsql
AS $fn$
BEGIN
  UPDATE __STATION__.rotation_cards AS c
     SET last_changed_at = now()
   WHERE c.id IN (OLD.card_id, NEW.card_id);
  RETURN NULL;
END;
$fn$;

-- -----------------------------------------------------------------------------
-- Triggers (names as upstream; same-event triggers fire in name order)
-- -----------------------------------------------------------------------------

-- artists
CREATE TRIGGER cdc_artists
  AFTER INSERT OR UPDATE OR DELETE ON __STATION__.artists
  FOR EACH ROW EXECUTE FUNCTION public.cdc_notify();
CREATE TRIGGER cascade_library_artist_name
  AFTER UPDATE OF artist_name ON __STATION__.artists
  FOR EACH ROW
  WHEN (OLD.artist_name IS DISTINCT FROM NEW.artist_name)
  EXECUTE FUNCTION __STATION__.cascade_library_artist_name();
CREATE TRIGGER touch_library_watermark_from_artists
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON __STATION__.artists
  FOR EACH STATEMENT EXECUTE FUNCTION __STATION__.touch_library_watermark();

-- genres
CREATE TRIGGER cdc_genres
  AFTER INSERT OR UPDATE OR DELETE ON __STATION__.genres
  FOR EACH ROW EXECUTE FUNCTION public.cdc_notify();
CREATE TRIGGER touch_library_watermark_from_genres
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON __STATION__.genres
  FOR EACH STATEMENT EXECUTE FUNCTION __STATION__.touch_library_watermark();

-- format
CREATE TRIGGER cdc_format
  AFTER INSERT OR UPDATE OR DELETE ON __STATION__.format
  FOR EACH ROW EXECUTE FUNCTION public.cdc_notify();
CREATE TRIGGER touch_library_watermark_from_format
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON __STATION__.format
  FOR EACH STATEMENT EXECUTE FUNCTION __STATION__.touch_library_watermark();

-- labels (no watermark trigger upstream)
CREATE TRIGGER cdc_labels
  AFTER INSERT OR UPDATE OR DELETE ON __STATION__.labels
  FOR EACH ROW EXECUTE FUNCTION public.cdc_notify();

-- genre_artist_crossreference
CREATE TRIGGER cdc_genre_artist_xref
  AFTER INSERT OR UPDATE OR DELETE ON __STATION__.genre_artist_crossreference
  FOR EACH ROW EXECUTE FUNCTION public.cdc_notify();
CREATE TRIGGER touch_library_watermark_from_gac
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON __STATION__.genre_artist_crossreference
  FOR EACH STATEMENT EXECUTE FUNCTION __STATION__.touch_library_watermark();

-- library
CREATE TRIGGER cdc_library
  AFTER INSERT OR UPDATE OR DELETE ON __STATION__.library
  FOR EACH ROW EXECUTE FUNCTION public.cdc_notify();
CREATE TRIGGER touch_library_watermark
  AFTER INSERT
     OR UPDATE OF id, legacy_release_id, artist_id, genre_id, format_id,
                  alternate_artist_name, album_artist, album_title, label,
                  code_number, code_volume_letters, on_streaming, artwork_url,
                  artist_name, canonical_entity_id
     OR DELETE OR TRUNCATE
  ON __STATION__.library
  FOR EACH STATEMENT EXECUTE FUNCTION __STATION__.touch_library_watermark();

-- library_identity: deliberately no triggers (none upstream; invisible on cdc).

-- rotation
CREATE TRIGGER cdc_rotation
  AFTER INSERT OR UPDATE OR DELETE ON __STATION__.rotation
  FOR EACH ROW EXECUTE FUNCTION public.cdc_notify();
CREATE TRIGGER stamp_rotation_card_on_insert_delete
  AFTER INSERT OR DELETE ON __STATION__.rotation
  FOR EACH ROW EXECUTE FUNCTION __STATION__.stamp_rotation_card_last_changed();
CREATE TRIGGER stamp_rotation_card_on_update
  AFTER UPDATE OF card_id, kill_date ON __STATION__.rotation
  FOR EACH ROW
  WHEN (OLD.card_id IS DISTINCT FROM NEW.card_id OR OLD.kill_date IS DISTINCT FROM NEW.kill_date)
  EXECUTE FUNCTION __STATION__.stamp_rotation_card_last_changed();
CREATE TRIGGER touch_library_watermark_from_rotation
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON __STATION__.rotation
  FOR EACH STATEMENT EXECUTE FUNCTION __STATION__.touch_library_watermark();

-- flowsheet
CREATE TRIGGER bump_flowsheet_updated_at
  BEFORE INSERT OR UPDATE ON __STATION__.flowsheet
  FOR EACH ROW EXECUTE FUNCTION __STATION__.bump_flowsheet_updated_at();
CREATE TRIGGER cdc_flowsheet
  AFTER INSERT OR UPDATE OR DELETE ON __STATION__.flowsheet
  FOR EACH ROW EXECUTE FUNCTION public.cdc_notify();
CREATE TRIGGER touch_flowsheet_watermark
  AFTER INSERT OR UPDATE OR DELETE ON __STATION__.flowsheet
  FOR EACH STATEMENT EXECUTE FUNCTION __STATION__.touch_flowsheet_watermark();
